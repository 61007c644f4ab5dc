"""A local OpenID Connect provider answering as Pro Santé Connect does, for tests and `make run`.

It serves, under a Keycloak-like realm path as PSC does, the discovery document, the
authorization endpoint (a page listing the demo professionals, whose form is the consent),
the token endpoint (authorization code + PKCE S256, client_secret_basic / client_secret_post /
private_key_jwt), the JWKS (RS256), userinfo (PSC's `SubjectNameID`, `SubjectRefPro`, ...)
and the end-session endpoint. It refuses what PSC refuses: an unknown client, a redirect URI
that was not registered (never redirecting to it), a code used twice, a wrong PKCE verifier,
an expired code. State is in memory: it is a simulator, one process.

    python -m bsante.identity.psc_provider --port 8091 --client-id C --client-secret S \
        --redirect-uri http://127.0.0.1:8000/api/identity/auth/psc/callback
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import html
import json
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import extract_compact

REALM = "/auth/realms/esante-wallet"
OIDC = f"{REALM}/protocol/openid-connect"
ACR = "eidas1"
DEMO_CLIENT_ID = "bsante-demo"
SCOPES = ["openid", "scope_all"]


@dataclass(frozen=True)
class Professional:
    """A professional as PSC describes one (its userinfo claims come from the directory)."""

    ps_id_nat: str
    family_name: str
    given_name: str
    profession_code: str  # TRE_G15
    category_code: str = "C"  # TRE_R09: civil


# The demo médecin and infirmier of demo-ehpad, and one professional whom no platform account
# is linked to (the refusal path).
DEMO_PROFESSIONALS = [
    Professional("810001000016", "LEMAIRE", "Claire", "10"),
    Professional("810001000024", "GIRARD", "Paul", "60"),
    Professional("810001000032", "MOREAU", "Julie", "10"),
]


@dataclass
class RegisteredClient:
    client_id: str
    redirect_uris: list[str]
    secret: str | None = None
    # private_key_jwt: the client's public keys (a JWKS).
    jwks: dict[str, Any] | None = None
    post_logout_redirect_uris: list[str] = field(default_factory=list)


@dataclass
class ProviderConfig:
    issuer: str
    clients: dict[str, RegisteredClient]
    professionals: list[Professional] = field(default_factory=lambda: list(DEMO_PROFESSIONALS))
    code_ttl_seconds: int = 60
    token_ttl_seconds: int = 300
    # Seconds since the epoch; tests move it to expire codes without waiting.
    clock: Callable[[], float] = time.time


@dataclass
class _Pending:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    acr: str


@dataclass
class _Code:
    pending: _Pending
    ps_id_nat: str
    expires_at: float


class _Failure(Exception):
    """An RFC 6749 error answer of the token or userinfo endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='fr'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><h1>{title}</h1>{body}</body></html>",
        status_code=status,
    )


async def _form(request: Request) -> dict[str, str]:
    # Form bodies parsed by hand: the platform has no multipart dependency.
    parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}


def build_provider(config: ProviderConfig) -> FastAPI:
    """The provider's ASGI app; `app.state.config` is the `ProviderConfig` (tests change it)."""
    app = FastAPI(title="Pro Santé Connect (local)", docs_url=None, redoc_url=None)
    app.state.config = config
    rotate_keys(app)
    pending: dict[str, _Pending] = {}
    codes: dict[str, _Code] = {}
    access_tokens: dict[str, tuple[str, float]] = {}
    by_id = {p.ps_id_nat: p for p in config.professionals}

    def now() -> float:
        cfg: ProviderConfig = app.state.config
        return cfg.clock()

    def url(path: str) -> str:
        return config.issuer.removesuffix(REALM) + path

    @app.get(f"{REALM}/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": config.issuer,
            "authorization_endpoint": url(f"{OIDC}/auth"),
            "token_endpoint": url(f"{OIDC}/token"),
            "userinfo_endpoint": url(f"{OIDC}/userinfo"),
            "end_session_endpoint": url(f"{OIDC}/logout"),
            "jwks_uri": url(f"{OIDC}/certs"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "acr_values_supported": [ACR],
            "claims_supported": [
                "sub",
                "acr",
                "preferred_username",
                "given_name",
                "family_name",
                "SubjectNameID",
                "SubjectRefPro",
                "SubjectOrganization",
                "otherIds",
            ],
        }

    @app.get(f"{OIDC}/certs")
    async def certs() -> dict[str, Any]:
        published: KeySet = app.state.keys
        return dict(published.as_dict(private=False))

    @app.get(f"{OIDC}/auth")
    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = config.clients.get(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        if client is None:
            return _page("Erreur", "<p>Unknown client_id</p>", 400)
        if redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI: that is how codes get stolen.
            return _page("Erreur", "<p>Invalid parameter: redirect_uri</p>", 400)

        def back(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description}
            if q.get("state"):
                params["state"] = q["state"]
            return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

        if q.get("response_type") != "code":
            return back("unsupported_response_type", "Only the code flow is supported")
        if "openid" not in q.get("scope", "").split():
            return back("invalid_scope", "The openid scope is required")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back("invalid_request", "PKCE with S256 is required")
        acr_values = q.get("acr_values", ACR).split()
        if ACR not in acr_values:
            return back("invalid_request", f"acr_values must include {ACR}")
        request_id = secrets.token_urlsafe(16)
        pending[request_id] = _Pending(
            client.client_id,
            redirect_uri,
            q.get("scope", ""),
            q.get("state"),
            q.get("nonce"),
            q["code_challenge"],
            ACR,
        )
        choices = "".join(
            f"<p><label><input type='radio' name='professional' value='{p.ps_id_nat}'"
            f"{' checked' if i == 0 else ''}> {html.escape(p.given_name)} "
            f"{html.escape(p.family_name)} ({p.ps_id_nat})</label></p>"
            for i, p in enumerate(config.professionals)
        )
        return _page(
            "Pro Santé Connect (local)",
            f"<form method='post' action='{OIDC}/auth'>"
            f"<input type='hidden' name='request_id' value='{request_id}'>{choices}"
            "<button name='decision' value='accept'>Se connecter avec e-CPS</button> "
            "<button name='decision' value='deny'>Refuser</button></form>",
        )

    @app.post(f"{OIDC}/auth")
    async def consent(request: Request) -> Response:
        form = await _form(request)
        request_id = form.get("request_id", "")
        found = pending.pop(request_id, None)
        if found is None:
            return _page("Erreur", "<p>Unknown or already answered authorization</p>", 400)
        params: dict[str, str] = {}
        professional = by_id.get(form.get("professional", ""))
        if form.get("decision") != "accept" or professional is None:
            params = {"error": "access_denied", "error_description": "The user refused"}
        else:
            code = secrets.token_urlsafe(32)
            codes[code] = _Code(
                found, professional.ps_id_nat, now() + app.state.config.code_ttl_seconds
            )
            params = {"code": code}
        if found.state:
            params["state"] = found.state
        return RedirectResponse(f"{found.redirect_uri}?{urlencode(params)}", status_code=302)

    def authenticate(request: Request, form: dict[str, str]) -> RegisteredClient:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                raise _Failure("invalid_client", "Malformed Basic credentials", 401) from None
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        assertion = form.get("client_assertion")
        if assertion is not None:
            return _assertion_client(assertion, form)
        client = config.clients.get(client_id)
        if (
            client is None
            or client.secret is None
            or not secrets.compare_digest(client.secret.encode(), secret.encode())
        ):
            raise _Failure("invalid_client", "Client authentication failed", 401)
        return client

    def _assertion_client(assertion: str, form: dict[str, str]) -> RegisteredClient:
        refused = _Failure("invalid_client", "Client assertion refused", 401)
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            raise refused
        try:
            # The assertion's issuer names the client whose keys verify it.
            client_id = str(json.loads(extract_compact(assertion.encode()).payload)["iss"])
        except (JoseError, ValueError, KeyError, TypeError):
            raise refused from None
        client = config.clients.get(client_id)
        if client is None or client.jwks is None:
            raise refused
        try:
            client_keys = KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
            token = jwt.decode(assertion, client_keys, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                now=int(now()),
                iss={"essential": True, "value": client_id},
                sub={"essential": True, "value": client_id},
                aud={"essential": True, "value": url(f"{OIDC}/token")},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError):
            raise refused from None
        return client

    def id_token(code: _Code, access_token: str) -> str:
        issued = int(now())
        digest = hashlib.sha256(access_token.encode()).digest()
        claims = {
            "iss": config.issuer,
            "sub": _subject(code.ps_id_nat),
            "aud": code.pending.client_id,
            "azp": code.pending.client_id,
            "iat": issued,
            "auth_time": issued,
            "exp": issued + app.state.config.token_ttl_seconds,
            "acr": code.pending.acr,
            "preferred_username": code.ps_id_nat,
            "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode(),
        }
        if code.pending.nonce:
            claims["nonce"] = code.pending.nonce
        key: RSAKey = app.state.signing_key
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)

    @app.post(f"{OIDC}/token")
    async def token(request: Request) -> JSONResponse:
        form = await _form(request)
        try:
            client = authenticate(request, form)
            if form.get("grant_type") != "authorization_code":
                raise _Failure("unsupported_grant_type", "Only authorization_code is supported")
            # Popped before any check: a code is spent by its first use, good or bad.
            found = codes.pop(form.get("code", ""), None)
            if found is None:
                raise _Failure("invalid_grant", "Code not valid (unknown or already used)")
            if found.expires_at <= now():
                raise _Failure("invalid_grant", "Code not valid (expired)")
            if found.pending.client_id != client.client_id:
                raise _Failure("invalid_grant", "Code issued to another client")
            if form.get("redirect_uri") != found.pending.redirect_uri:
                raise _Failure("invalid_grant", "Incorrect redirect_uri")
            verifier = form.get("code_verifier", "")
            if not verifier or not secrets.compare_digest(
                create_s256_code_challenge(verifier), found.pending.code_challenge
            ):
                raise _Failure("invalid_grant", "PKCE verification failed: code_verifier")
        except _Failure as failure:
            return JSONResponse(
                {"error": failure.error, "error_description": failure.description},
                status_code=failure.status,
                headers={"Cache-Control": "no-store"},
            )
        access = secrets.token_urlsafe(32)
        ttl = app.state.config.token_ttl_seconds
        access_tokens[access] = (found.ps_id_nat, now() + ttl)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": ttl,
                "id_token": id_token(found, access),
                "scope": found.pending.scope,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get(f"{OIDC}/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        header = request.headers.get("authorization", "")
        held = access_tokens.get(header[7:]) if header.lower().startswith("bearer ") else None
        if held is None or held[1] <= now():
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Token invalid or expired"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        p = by_id[held[0]]
        return JSONResponse(
            {
                "sub": _subject(p.ps_id_nat),
                "SubjectNameID": p.ps_id_nat,
                "preferred_username": p.ps_id_nat,
                "given_name": p.given_name,
                "family_name": p.family_name,
                "SubjectOrganization": "",
                "otherIds": [{"identifiant": p.ps_id_nat[1:], "origine": "RPPS", "qualite": 1}],
                "SubjectRefPro": {
                    "codeCivilite": "",
                    "exercices": [
                        {
                            "codeProfession": p.profession_code,
                            "codeCategorieProfessionnelle": p.category_code,
                            "nomDexercice": p.family_name,
                            "prenomDexercice": p.given_name,
                            "activities": [],
                        }
                    ],
                },
            }
        )

    @app.get(f"{OIDC}/logout")
    async def logout(request: Request) -> Response:
        q = request.query_params
        target = q.get("post_logout_redirect_uri")
        if not target:
            return _page("Déconnexion", "<p>Vous êtes déconnecté de Pro Santé Connect.</p>")
        client = config.clients.get(q.get("client_id", ""))
        hint = q.get("id_token_hint")
        if client is None and hint:
            try:
                decoded = jwt.decode(hint, app.state.keys, algorithms=["RS256"])
                client = config.clients.get(str(decoded.claims.get("aud", "")))
            except (JoseError, ValueError):
                client = None
        if client is None or target not in client.post_logout_redirect_uris:
            return _page("Erreur", "<p>Invalid parameter: post_logout_redirect_uri</p>", 400)
        params = {"state": q["state"]} if q.get("state") else {}
        suffix = f"?{urlencode(params)}" if params else ""
        return RedirectResponse(target + suffix, status_code=302)

    return app


def rotate_keys(app: FastAPI) -> None:
    """Sign with a new RS256 key from now on; the previous ones stay published (as PSC does
    during a rotation, so tokens signed just before still verify)."""
    key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig"})
    previous: list[RSAKey] = list(app.state.keys.keys) if hasattr(app.state, "keys") else []
    app.state.keys = KeySet([key, *previous])
    app.state.signing_key = key


def _subject(ps_id_nat: str) -> str:
    # PSC's `sub` is its own identifier of the person, distinct from the RPPS-based one.
    return "f:" + hashlib.sha256(b"psc-local " + ps_id_nat.encode()).hexdigest()[:24]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Served beside another server (the platform) that owns Ctrl-C, or inside tests.
        yield


@contextlib.asynccontextmanager
async def serving(
    clients: dict[str, RegisteredClient], *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FastAPI]:
    """The provider over real HTTP inside the running event loop (port 0: any free port);
    the issuer is `http://<host>:<port>/auth/realms/esante-wallet`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening before uvicorn starts: a connection made meanwhile waits in the backlog.
    sock.listen(128)
    issuer = f"http://{host}:{sock.getsockname()[1]}{REALM}"
    app = build_provider(ProviderConfig(issuer, clients))
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield app
    finally:
        server.should_exit = True
        await task
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", action="append", required=True)
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[])
    args = parser.parse_args(argv)
    client = RegisteredClient(
        args.client_id, args.redirect_uri, args.client_secret, None, args.post_logout_redirect_uri
    )
    issuer = f"http://{args.host}:{args.port}{REALM}"
    app = build_provider(ProviderConfig(issuer, {client.client_id: client}))
    print(f"Pro Santé Connect (local): {issuer}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
