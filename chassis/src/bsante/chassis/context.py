"""Per-request / per-message context: correlation id, request id, client address."""

from __future__ import annotations

from contextvars import ContextVar

import uuid_utils

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
client_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def new_id() -> str:
    """A fresh random id (UUID 4) for a request or a correlation; not a secret."""
    # uuid_utils draws from a user-space generator: the standard library's uuid4 makes a
    # getrandom system call per id, a visible cost at two ids per request.
    return str(uuid_utils.uuid4())


def current_correlation_id() -> str:
    """The correlation id of the work in progress, or a fresh one."""
    return correlation_id.get() or new_id()
