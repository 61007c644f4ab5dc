"""RFC 9457 problem+json for every error a service answers, naming the failing fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://bsante.example/problems/"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class DomainError(Exception):
    """A rule of the domain refused the request; `status` says how HTTP reports it."""

    status = 422
    kind = "domain-rule"

    def __init__(self, detail: str, *, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)


class NotFound(DomainError):
    status = 404
    kind = "not-found"


class Conflict(DomainError):
    status = 409
    kind = "conflict"


class Forbidden(DomainError):
    status = 403
    kind = "forbidden"


class Unauthorized(DomainError):
    status = 401
    kind = "unauthorized"


class PreconditionFailed(DomainError):
    """The version named by If-Match is not the current one (RFC 9110: 412)."""

    status = 412
    kind = "precondition-failed"


class TooManyRequests(DomainError):
    """429, with the seconds to wait in Retry-After."""

    status = 429
    kind = "too-many-requests"

    def __init__(
        self, detail: str, *, retry_after: int, errors: Sequence[dict[str, Any]] = ()
    ) -> None:
        super().__init__(detail, errors=errors)
        self.retry_after = max(1, retry_after)


def _headers_of(exc: DomainError) -> dict[str, str] | None:
    if exc.status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    return None


def named_version(if_match: str | None) -> int | None:
    """The version an If-Match header names (None when absent or not a version ETag)."""
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


# --- Neutral refusals: what went wrong, in domain terms; `REFUSAL_STATUS` says how HTTP reports
# it. Use cases raise subclasses of these (they carry no status); `DomainError` and its
# subclasses above keep working for services that have not moved yet.


class Refusal(Exception):
    """A use case refused the request; the HTTP layer maps the class to a status."""

    kind = "domain-rule"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] = (),
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.retry_after_seconds = retry_after_seconds


class RuleViolation(Refusal):
    """The request breaks a rule of the domain."""


class NotFoundError(Refusal):
    kind = "not-found"


class ConflictError(Refusal):
    kind = "conflict"


class AccessDenied(Refusal):
    kind = "forbidden"


class AuthenticationFailed(Refusal):
    """The caller could not be authenticated (unknown credentials, expired session)."""

    kind = "unauthorized"


class TooManyAttempts(Refusal):
    kind = "too-many-attempts"


class Unavailable(Refusal):
    kind = "unavailable"


REFUSAL_STATUS: dict[type[Refusal], int] = {
    RuleViolation: 422,
    NotFoundError: 404,
    ConflictError: 409,
    AccessDenied: 403,
    AuthenticationFailed: 401,
    TooManyAttempts: 429,
    Unavailable: 503,
}


def refusal_status(exc: Refusal) -> int:
    """The status of the nearest mapped class in the exception's ancestry (422 by default)."""
    for cls in type(exc).__mro__:
        if cls in REFUSAL_STATUS:
            return REFUSAL_STATUS[cls]
    return 422


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (kind or str(status)),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(raw: Sequence[Any]) -> tuple[int, list[dict[str, Any]]]:
    """Pydantic errors as {field, message, type}; malformed JSON makes the status 400."""
    errors = []
    status = 422
    for err in raw:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        if err.get("type") == "json_invalid":
            status = 400
            loc = []  # pydantic puts the character position there, not a field
        errors.append(
            {
                "field": ".".join(loc) or "body",
                "location": str(err.get("loc", ("body",))[0]),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return status, errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, errors = field_errors(exc.errors())
        detail = "Malformed JSON body" if status == 400 else "The request has invalid fields"
        return problem(status, detail, kind="validation", errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return problem(
            exc.status_code, detail, headers=dict(exc.headers or {}), instance=request.url.path
        )

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        headers = _headers_of(exc)
        return problem(
            exc.status,
            exc.detail,
            kind=exc.kind,
            errors=exc.errors,
            headers=headers,
            instance=request.url.path,
        )

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal) -> JSONResponse:
        status = refusal_status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        if exc.retry_after_seconds is not None:
            headers["Retry-After"] = str(max(1, exc.retry_after_seconds))
        return problem(
            status,
            exc.detail,
            kind=exc.kind,
            errors=exc.errors,
            headers=headers or None,
            instance=request.url.path,
        )

    @app.exception_handler(ConcurrencyConflict)
    async def _conflict(request: Request, exc: ConcurrencyConflict) -> JSONResponse:
        # The store refused the version the client named in If-Match: its precondition
        # failed (412). Without If-Match the conflict is between two concurrent writes (409).
        if named_version(request.headers.get("if-match")) == exc.expected:
            return problem(
                412,
                "The resource changed since the version named by If-Match; reload and retry",
                kind="precondition-failed",
                errors=[{"field": "If-Match", "message": "not the current version"}],
                instance=request.url.path,
            )
        return problem(
            409,
            "The resource changed since you read it; reload and retry",
            kind="version-conflict",
            instance=request.url.path,
        )

    @app.exception_handler(DuplicateDocument)
    async def _duplicate(request: Request, exc: DuplicateDocument) -> JSONResponse:
        return problem(409, "The resource already exists", kind="duplicate")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        return problem(500, "An unexpected error occurred", instance=request.url.path)
