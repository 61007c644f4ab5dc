"""Per-request / per-message context: correlation id, request id, client address."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
client_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def current_correlation_id() -> str:
    """The correlation id of the work in progress, or a fresh one."""
    return correlation_id.get() or str(uuid.uuid4())
