"""Identity's use cases: a command in, domain calls, one unit of work out, over narrow ports.

One module per use case family (`login`, `sessions`, `accounts`, `structures`); routers build
the commands, call these functions and turn their results into responses. Refusals are the
chassis' neutral `Refusal` classes; the HTTP layer maps them to statuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument

T = TypeVar("T")

# Transactions that lose a race (a version changed, a claim appeared) are run again from their
# reads; this bounds how many times before the conflict goes to the caller (409).
RETRIES = 25


async def retried(attempt: Callable[[], Awaitable[T]], *, times: int = RETRIES) -> T:
    """Run a read-decide-write transaction again when a concurrent one changed what it read."""
    for remaining in range(times - 1, -1, -1):
        try:
            return await attempt()
        except (ConcurrencyConflict, DuplicateDocument):
            if remaining == 0:
                raise
    raise AssertionError("unreachable")
