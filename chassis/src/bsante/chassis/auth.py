"""Access tokens: Ed25519-signed JWTs issued by identity, verified locally by every service.

Identity publishes its public keys as a JWKS; services fetch and cache it, and fetch again when a
token names a key they do not know yet (key rotation).

Two kinds of token share the keys: user tokens (structures, roles; routes guarded by `allowed`)
and service tokens (`token_use: "service"`, a `client_id` and a `scope`, no structures; routes
guarded by `service_scope`). Neither is accepted where the other is expected.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Header, Request
from jwt.algorithms import OKPAlgorithm

from bsante.chassis.errors import Forbidden, Unauthorized
from bsante.contracts.permissions import Action, is_allowed

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex[:16], private_key=Ed25519PrivateKey.generate())

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return jwk


@dataclass(frozen=True)
class Principal:
    """Who is calling, and for which structure they act in this request."""

    user_id: str
    structures: tuple[str, ...]
    acting_structure: str
    roles: tuple[str, ...]
    profession: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False)


def issue_token(
    key: SigningKey,
    *,
    subject: str,
    structures: list[str],
    roles: dict[str, list[str]],
    profession: str | None,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    extra: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "structures": structures,
        "roles": roles,
        "profession": profession,
        **(extra or {}),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


SERVICE_TOKEN_USE = "service"


def issue_service_token(
    key: SigningKey,
    *,
    client_id: str,
    scopes: list[str],
    issuer: str,
    audience: str,
    ttl_seconds: int,
) -> str:
    """A client-credentials access token (RFC 9068 shape: `sub` is the client id)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": client_id,
        "client_id": client_id,
        "token_use": SERVICE_TOKEN_USE,
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


JwksSource = Callable[[], Awaitable[dict[str, Any]]]


def http_jwks_source(url: str, timeout: float = 5.0) -> JwksSource:
    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    return fetch


class TokenVerifier:
    """Verifies tokens against the JWKS; a token already verified is not verified again.

    The verified claims of a token are kept (keyed by the exact token string) for at most
    `cache_seconds` and never past the token's `exp`: a front-end sends the same token on
    every request, and an Ed25519 verification plus PyJWT's decoding cost more than the rest of
    a simple read. A key removed from the JWKS stops being honoured within `cache_seconds`.
    """

    def __init__(
        self,
        source: JwksSource,
        *,
        issuer: str,
        audience: str,
        min_refresh_seconds: float = 10.0,
        cache_seconds: float = 60.0,
        cache_size: int = 4096,
    ) -> None:
        self._source = source
        self._issuer = issuer
        self._audience = audience
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._min_refresh = min_refresh_seconds
        self._lock = asyncio.Lock()
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_refresh:
            async with self._lock:
                if kid not in self._keys:
                    try:
                        jwks = await self._source()
                    except Exception as error:
                        raise Unauthorized("Token keys are unavailable") from error
                    self._fetched_at = time.monotonic()
                    self._keys = {
                        k["kid"]: OKPAlgorithm.from_jwk(json.dumps(k))
                        for k in jwks.get("keys", [])
                        if k.get("kid")
                    }
        if kid not in self._keys:
            raise Unauthorized("Token signed by an unknown key")
        return self._keys[kid]

    async def verify(self, token: str) -> dict[str, Any]:
        cached = self._verified.get(token)
        if cached is not None:
            valid_until, claims = cached
            if time.time() < valid_until:
                return claims
            del self._verified[token]
        claims = await self._verify(token)
        valid_until = min(float(claims["exp"]), time.time() + self._cache_seconds)
        self._verified[token] = (valid_until, claims)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized("Malformed token") from error
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise Unauthorized("Unsupported token")
        key = await self._key(header["kid"])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("Token expired") from error
        except jwt.PyJWTError as error:
            raise Unauthorized("Invalid token") from error
        return claims


def principal_from_claims(claims: dict[str, Any], requested_structure: str | None) -> Principal:
    if claims.get("token_use") == SERVICE_TOKEN_USE:
        raise Forbidden("A service token cannot act for a user")
    structures = tuple(str(s) for s in claims.get("structures") or ())
    if not structures:
        raise Forbidden("The user acts for no structure")
    acting = requested_structure or structures[0]
    if acting not in structures:
        # Not 404: the caller names the structure themselves, nothing leaks.
        raise Forbidden("You do not act for this structure")
    roles_by_structure = claims.get("roles") or {}
    return Principal(
        user_id=str(claims["sub"]),
        structures=structures,
        acting_structure=acting,
        roles=tuple(roles_by_structure.get(acting, ())),
        profession=claims.get("profession"),
        claims=claims,
    )


async def _verified_bearer(request: Request) -> dict[str, Any]:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A bearer token is required")
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(token.strip())


async def current_principal(
    request: Request,
    x_structure_id: Annotated[str | None, Header(max_length=100)] = None,
) -> Principal:
    """FastAPI dependency: the verified caller; 401 without a valid bearer token."""
    claims = await _verified_bearer(request)
    principal = principal_from_claims(claims, x_structure_id)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def allowed(action: Action) -> Any:
    """Dependency: the caller, if the habilitation matrix lets them do `action`; else 403."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not is_allowed(principal.roles, principal.profession, action):
            raise Forbidden(f"Your role does not allow: {action.value}")
        return principal

    # Lets tests walk every route and read which action guards it.
    check.action = action  # type: ignore[attr-defined]
    return Depends(check)


@dataclass(frozen=True)
class ServicePrincipal:
    """A service client calling with a client-credentials token."""

    client_id: str
    scopes: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict, compare=False)


async def current_service(request: Request) -> ServicePrincipal:
    """FastAPI dependency: the verified service client; 403 for a user token."""
    claims = await _verified_bearer(request)
    if claims.get("token_use") != SERVICE_TOKEN_USE:
        raise Forbidden("This route is for service clients only")
    scope = claims.get("scope")
    caller = ServicePrincipal(
        client_id=str(claims.get("client_id") or claims["sub"]),
        scopes=frozenset(scope.split() if isinstance(scope, str) else ()),
        claims=claims,
    )
    request.state.service_principal = caller
    return caller


CurrentServiceClient = Annotated[ServicePrincipal, Depends(current_service)]


def service_scope(scope: str) -> Any:
    """Dependency: the service client, if its token carries `scope`; else 403."""

    async def check(caller: CurrentServiceClient) -> ServicePrincipal:
        if scope not in caller.scopes:
            raise Forbidden(f"The service token lacks the scope: {scope}")
        return caller

    # Lets tests find every service-only route and the scope it needs.
    check.scope = scope  # type: ignore[attr-defined]
    return Depends(check)
