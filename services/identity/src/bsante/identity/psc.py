"""OpenID Connect client of Pro Santé Connect: discovery, authorization URL, code exchange,
ID token verification (Authlib and joserfc), userinfo and end-session.

Everything here talks to the provider or checks what it answered; the state of a login in
progress lives in identity's store (`bsante.identity.psc_login`). Discovery and the JWKS are
cached per process; the JWKS is fetched again once when a token names a key it does not hold
(the provider rotated its keys).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import extract_compact

from bsante.chassis.errors import AccessDenied, AuthenticationFailed, Unavailable
from bsante.identity.settings import IdentitySettings

ALGORITHMS = ["RS256", "PS256", "ES256"]
# Clock skew tolerated between the provider and us when checking exp and iat.
LEEWAY_SECONDS = 60


class PscNotConfigured(Unavailable):
    kind = "psc-not-configured"


class PscUnavailable(Unavailable):
    """Pro Santé Connect cannot be reached or answered nonsense: 503, other logins unaffected."""

    kind = "psc-unavailable"


class PscLoginRefused(AuthenticationFailed):
    """401 naming what failed: state, code, ID token claim, userinfo."""

    kind = "psc-login-refused"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        errors = [{"field": field, "message": detail, "type": "psc"}] if field else []
        super().__init__(detail, errors=errors)


class PscNoAccount(AccessDenied):
    """The provider authenticated a professional no platform account is linked to."""

    kind = "psc-no-account"


@dataclass(frozen=True)
class PscClientConfig:
    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str = ""
    private_key_pem: str = ""
    post_logout_redirect_uri: str = ""
    scope: str = "openid scope_all"
    acr_values: tuple[str, ...] = ("eidas1",)
    timeout_seconds: float = 5.0

    @classmethod
    def from_settings(cls, s: IdentitySettings) -> PscClientConfig | None:
        if not s.psc_issuer:
            return None
        secret = s.psc_client_secret
        if not secret and s.psc_client_secret_file:
            secret = Path(s.psc_client_secret_file).read_text().strip()
        key = Path(s.psc_private_key_file).read_text() if s.psc_private_key_file else ""
        return cls(
            issuer=s.psc_issuer.rstrip("/"),
            client_id=s.psc_client_id,
            redirect_uri=s.psc_redirect_uri,
            client_secret=secret,
            private_key_pem=key,
            post_logout_redirect_uri=s.psc_post_logout_redirect_uri,
            scope=s.psc_scope,
            acr_values=tuple(s.psc_acr_values),
            timeout_seconds=s.psc_timeout_seconds,
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def verify_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    acr_values: tuple[str, ...],
    access_token: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The ID token's claims, once signature, iss, aud, exp, iat, nonce, acr (and at_hash when
    present) hold; `PscLoginRefused` naming the first that does not."""
    try:
        decoded = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError):
        raise PscLoginRefused(
            "ID token refused: its signature does not verify", field="id_token"
        ) from None
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "exp": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
            "acr": {"essential": True, "values": list(acr_values)},
        },
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(now=now if now is not None else int(time.time()), leeway=LEEWAY_SECONDS)
    except JoseError as error:
        claim = getattr(error, "claim", None) or error.error
        raise PscLoginRefused(
            f"ID token refused: {claim} ({error.error})", field=f"id_token.{claim}"
        ) from None
    return dict(claims)


class PscClient:
    """The platform as a relying party of one OpenID Connect provider."""

    def __init__(self, config: PscClientConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http or httpx.AsyncClient(timeout=config.timeout_seconds)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.get(url, **kwargs)
        except httpx.HTTPError:
            raise PscUnavailable("Pro Santé Connect cannot be reached; try again later") from None
        if response.status_code >= 500:
            raise PscUnavailable(f"Pro Santé Connect answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise PscUnavailable("Pro Santé Connect answered a body that is not JSON") from None
        if not isinstance(body, dict):
            raise PscUnavailable("Pro Santé Connect answered a body that is not an object")
        if response.status_code >= 400:
            body.setdefault("error", str(response.status_code))
        return body

    async def metadata(self) -> dict[str, Any]:
        """The discovery document; its issuer must be the configured one (OIDC Discovery 4.3)."""
        if self._metadata is not None:
            return self._metadata
        async with self._lock:
            if self._metadata is None:
                url = f"{self.config.issuer}/.well-known/openid-configuration"
                meta = await self._get_json(url)
                if meta.get("issuer") != self.config.issuer:
                    raise PscUnavailable("The discovery document names another issuer")
                needed = ("authorization_endpoint", "token_endpoint", "jwks_uri")
                if not all(isinstance(meta.get(k), str) for k in needed):
                    raise PscUnavailable("The discovery document lacks an endpoint")
                self._metadata = meta
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            body = await self._get_json((await self.metadata())["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError):
                raise PscUnavailable("The provider's JWKS cannot be read") from None
        return self._keys

    async def authorization_request(self) -> AuthorizationRequest:
        meta = await self.metadata()
        state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": self.config.scope,
            "state": state,
            "nonce": nonce,
            "acr_values": " ".join(self.config.acr_values),
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        url = f"{meta['authorization_endpoint']}?{urlencode(params)}"
        return AuthorizationRequest(url, state, nonce, verifier)

    async def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        """The token endpoint's answer to the code; refusals (invalid_grant...) are 401."""
        endpoint = (await self.metadata())["token_endpoint"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if self.config.private_key_pem:
            form["client_id"] = self.config.client_id
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            key = RSAKey.import_key(self.config.private_key_pem)
            assertion = private_key_jwt_sign(key, self.config.client_id, endpoint, alg="RS256")
            form["client_assertion"] = (
                assertion.decode() if isinstance(assertion, bytes) else str(assertion)
            )
        else:
            auth = httpx.BasicAuth(self.config.client_id, self.config.client_secret)
        try:
            response = await self._http.post(
                endpoint, data=form, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError:
            raise PscUnavailable("Pro Santé Connect cannot be reached; try again later") from None
        if response.status_code >= 500:
            status = response.status_code
            raise PscUnavailable(f"Pro Santé Connect's token endpoint answered {status}")
        try:
            body = response.json()
        except ValueError:
            raise PscUnavailable("Pro Santé Connect's token endpoint answered no JSON") from None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "error") if isinstance(body, dict) else "error"
            raise PscLoginRefused(f"Pro Santé Connect refused the code: {error}", field="code")
        if not isinstance(body.get("id_token"), str) or not isinstance(
            body.get("access_token"), str
        ):
            raise PscLoginRefused("Pro Santé Connect answered without id_token or access_token")
        return body

    async def verify(self, id_token: str, nonce: str, access_token: str) -> dict[str, Any]:
        keys = await self._key_set()
        kid = _kid(id_token)
        if kid is not None and not any(k.kid == kid for k in keys.keys):
            keys = await self._key_set(refresh=True)
        return verify_id_token(
            id_token,
            keys,
            issuer=self.config.issuer,
            client_id=self.config.client_id,
            nonce=nonce,
            acr_values=self.config.acr_values,
            access_token=access_token,
        )

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        url = (await self.metadata()).get("userinfo_endpoint")
        if not isinstance(url, str):
            raise PscUnavailable("The discovery document has no userinfo endpoint")
        body = await self._get_json(url, headers={"Authorization": f"Bearer {access_token}"})
        if "error" in body:
            raise PscLoginRefused(f"Pro Santé Connect refused userinfo: {body['error']}")
        return body

    async def end_session_url(self, id_token_hint: str | None) -> str | None:
        """Where the browser goes to end the PSC session too (None when PSC has none or is
        unreachable: the platform session is ended all the same)."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except PscUnavailable:
            return None
        if not isinstance(endpoint, str):
            return None
        params = {"client_id": self.config.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        if self.config.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.config.post_logout_redirect_uri
        return f"{endpoint}?{urlencode(params)}"


def _kid(token: str) -> str | None:
    try:
        kid = extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError):
        return None
    return kid if isinstance(kid, str) else None
