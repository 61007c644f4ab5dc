"""HTTP helpers every service's routes share: the service dependency, ETags, If-Match.

A stale If-Match is answered 412: the handler passes the version it names to the store's
update, and the store's ConcurrencyConflict for that version becomes 412 (see `errors`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bsante.chassis.errors import DomainError, PreconditionFailed
from bsante.chassis.service import Service


async def current_service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


ServiceDep = Annotated[Service, Depends(current_service)]


class PreconditionRequired(DomainError):
    status = 428
    kind = "precondition-required"


def etag(version: int) -> str:
    """The strong ETag of a document version."""
    return f'"{version}"'


def if_match_version(value: str | None) -> int | None:
    """The version named by an If-Match header (None when absent); 422 when it names none."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise DomainError(
            "If-Match must be the ETag of the version you read",
            errors=[{"field": "If-Match", "message": "not a version ETag"}],
        )
    # Bounded before it reaches the store (SQLite integers stop at 2**63): no document
    # reaches such a version, so the precondition fails.
    if len(raw) > 18:
        raise PreconditionFailed(
            "If-Match names a version the resource never had",
            errors=[{"field": "If-Match", "message": "not the current version"}],
        )
    return int(raw)


def required_if_match(value: str | None) -> int:
    """As `if_match_version`, but a missing header is 428: the write needs the version read."""
    version = if_match_version(value)
    if version is None:
        raise PreconditionRequired(
            "Send If-Match with the version you read (the ETag of GET)",
            errors=[{"field": "If-Match", "message": "required"}],
        )
    return version


def check_if_match(value: str | None, current: int) -> int:
    """The version to write over: the one read when If-Match is absent; 412 when If-Match
    names another one (evaluated before the write does any work, as RFC 9110 asks)."""
    version = if_match_version(value)
    if version is None:
        return current
    if version != current:
        raise PreconditionFailed(
            "The resource changed since the version named by If-Match; reload and retry",
            errors=[{"field": "If-Match", "message": f"the current version is {current}"}],
        )
    return version
