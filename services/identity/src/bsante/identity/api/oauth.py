"""OAuth2 client-credentials grant for service clients (RFC 6749 section 4.4), and its ops routes.

The token endpoint speaks OAuth, not RFC 9457: a form-encoded request, and errors as the JSON
object of RFC 6749 section 5.2 (`error`, `error_description`), which every OAuth client library
reads. The ops routes are ordinary API routes and answer problem+json.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote_plus

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import Principal, allowed, issue_service_token
from bsante.chassis.errors import NotFound
from bsante.chassis.openapi import problems
from bsante.contracts.permissions import Action
from bsante.identity import service_clients
from bsante.identity.api.deps import RATE_LIMITED, KeyRingDep, SettingsDep

log = structlog.get_logger(__name__)

router = APIRouter(tags=["oauth"])
admin = APIRouter(prefix="/admin/service-clients", tags=["service clients"])
Operator = Annotated[Principal, allowed(Action.MANAGE_PLATFORM)]

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ErrorCode = Literal["invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope"]


class ServiceToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str = Field(description="The granted scopes, space-separated")


class OAuthError(BaseModel):
    """RFC 6749 section 5.2."""

    error: ErrorCode
    error_description: str


class ClientCredentialsForm(BaseModel):
    grant_type: Literal["client_credentials"]
    scope: str | None = Field(None, description="Space-separated; default: all the client's")
    client_id: str | None = Field(None, description="Only when not using HTTP Basic")
    client_secret: str | None = Field(None, description="Only when not using HTTP Basic")


def _error(error: ErrorCode, description: str) -> JSONResponse:
    status = 401 if error == "invalid_client" else 400
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="bsante", charset="UTF-8"'
    body = OAuthError(error=error, error_description=description).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


class _Refused(Exception):
    def __init__(self, error: ErrorCode, description: str) -> None:
        super().__init__(description)
        self.error: ErrorCode = error
        self.description = description


async def _form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM:
        raise _Refused("invalid_request", f"The request body must be {FORM}")
    try:
        text = (await request.body()).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise _Refused("invalid_request", "The request body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise _Refused("invalid_request", f"Parameter sent more than once: {name[:50]}")
        if value:  # section 3.1: a parameter without a value is as if omitted
            form[name] = value
    return form


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    authorization = request.headers.get("authorization", "")
    in_body = "client_id" in form or "client_secret" in form
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise _Refused("invalid_client", "Authenticate the client with HTTP Basic")
        if in_body:
            raise _Refused("invalid_request", "Authenticate the client one way, not two")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _Refused("invalid_client", "Malformed HTTP Basic credentials") from None
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            raise _Refused("invalid_client", "Malformed HTTP Basic credentials")
        # Section 2.3.1: both parts are form-encoded before Basic.
        return unquote_plus(client_id), unquote_plus(secret)
    if "client_id" not in form or "client_secret" not in form:
        raise _Refused("invalid_client", "Client authentication is required")
    return form["client_id"], form["client_secret"]


@router.post(
    "/oauth/token",
    response_model=ServiceToken,
    responses={
        400: {
            "model": OAuthError,
            "description": "invalid_request, unsupported_grant_type, "
            "invalid_scope (RFC 6749 section 5.2)",
        },
        401: {"model": OAuthError, "description": "invalid_client"},
        **problems(429),
    },
    dependencies=RATE_LIMITED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": ClientCredentialsForm.model_json_schema()}},
        }
    },
)
async def client_credentials(
    request: Request, svc: ServiceDep, settings: SettingsDep, keys: KeyRingDep
) -> Any:
    """A service token for a service client (RFC 6749 section 4.4).

    The client authenticates with HTTP Basic (preferred) or `client_id`/`client_secret` in the
    body. The token carries `token_use: service`, `client_id` and the granted `scope`, and no
    structure: it opens service-only routes, never a user's.
    """
    try:
        form = await _form(request)
        grant = form.get("grant_type")
        if grant is None:
            raise _Refused("invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise _Refused("unsupported_grant_type", "Only client_credentials is supported")
        client_id, secret = _credentials(request, form)
        spec = settings.service_clients.get(client_id)
        known = await service_clients.authenticate(svc.store, client_id[:200], secret)
        if spec is None or not known:
            log.info("service_token_refused", reason="invalid_client")
            raise _Refused("invalid_client", "Unknown client or wrong secret")
        requested = form["scope"].split() if "scope" in form else list(spec.scopes)
        extra = sorted(set(requested) - set(spec.scopes))
        if extra:
            raise _Refused("invalid_scope", f"Scopes not granted to this client: {extra}")
    except _Refused as refused:
        return _error(refused.error, refused.description)
    scopes = sorted(set(requested))
    token = issue_service_token(
        await keys.signing_key(),
        client_id=client_id,
        scopes=scopes,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl_seconds=settings.service_token_ttl_seconds,
    )
    log.info("service_token_issued", client_id=client_id, scope=" ".join(scopes))
    body = ServiceToken(
        access_token=token, expires_in=settings.service_token_ttl_seconds, scope=" ".join(scopes)
    )
    return JSONResponse(body.model_dump(), headers=NO_STORE)


class SecretInfo(BaseModel):
    id: str
    origin: Literal["settings", "rotation"]
    created_at: datetime
    expires_at: datetime | None


class ServiceClientOut(BaseModel):
    client_id: str
    scopes: list[str]
    secrets: list[SecretInfo] = Field(description="Valid secrets, newest first (no hashes)")


@admin.get("", response_model=list[ServiceClientOut])
async def list_service_clients(
    principal: Operator, svc: ServiceDep, settings: SettingsDep
) -> list[ServiceClientOut]:
    """The configured service clients, their scopes and the validity of their secrets."""
    return [
        ServiceClientOut(
            client_id=client_id,
            scopes=spec.scopes,
            secrets=[
                SecretInfo.model_validate(s)
                for s in await service_clients.secrets_of(svc.store, client_id)
            ],
        )
        for client_id, spec in sorted(settings.service_clients.items())
    ]


class RotatedSecret(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown once: give it to the service's settings")
    previous_valid_until: datetime


@admin.post("/{client_id}/rotate", response_model=RotatedSecret)
async def rotate_secret(
    client_id: str, principal: Operator, svc: ServiceDep, settings: SettingsDep
) -> Any:
    """A new secret for the client; the previous ones stay valid for the overlap window
    (`IDENTITY_SERVICE_SECRET_OVERLAP_SECONDS`). 409 when two rotations race."""
    if client_id not in settings.service_clients:
        raise NotFound("No such service client")
    rotation = await service_clients.rotate(
        svc.store, client_id, timedelta(seconds=settings.service_secret_overlap_seconds)
    )
    log.info("service_client_secret_rotated", client_id=client_id, by=principal.user_id)
    body = RotatedSecret(
        client_id=rotation.client_id,
        client_secret=rotation.secret,
        previous_valid_until=rotation.previous_valid_until,
    )
    return JSONResponse(body.model_dump(mode="json"), headers=NO_STORE)
