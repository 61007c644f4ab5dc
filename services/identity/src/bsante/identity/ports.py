"""The narrow ports identity's use cases take: a unit of work, a clock, a password hasher."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from bsante.chassis.cpu import run_cpu
from bsante.chassis.messaging import UnitOfWork
from bsante.identity import domain

Clock = Callable[[], datetime]
# `Messaging.unit_of_work`: one store transaction whose events go to the outbox.
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


def system_clock() -> datetime:
    return datetime.now(UTC)


class PasswordHasher:
    """argon2id in the chassis CPU pool: a login no longer blocks every service of the process."""

    async def hash(self, password: str) -> str:
        return await run_cpu(domain.hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await run_cpu(domain.verify_password, password_hash, password)
