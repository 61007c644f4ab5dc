"""Login throttling: each attempt is counted, atomically, before its password is checked;
every token request is also counted per client address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bsante.chassis.errors import TooManyAttempts
from bsante.contracts.events import UserLockedOut
from bsante.identity.domain import (
    AddressLimit,
    AddressWindow,
    LockoutPolicy,
    LoginThrottle,
    User,
    address_key,
)
from bsante.identity.handlers import retried
from bsante.identity.ports import UnitOfWorkFactory

THROTTLES = "login_throttles"
ADDRESS_WINDOWS = "address_windows"


class AccountLocked(TooManyAttempts):
    """The user name is locked after repeated failures."""


class AddressRateLimited(TooManyAttempts):
    """Too many token requests from one client address."""


@dataclass(frozen=True)
class Attempt:
    key: str
    failures: int
    lock_seconds: int


async def count_attempt(
    uow: UnitOfWorkFactory, key: str, now: datetime, policy: LockoutPolicy
) -> Attempt:
    """Refuse if the name is locked, else count this attempt as a failure until it succeeds.

    The read and the increment are one transaction, re-run if a concurrent attempt changed the
    count in between: twenty concurrent attempts count twenty.
    """

    async def once() -> Attempt:
        async with uow() as unit:
            doc = await unit.tx.get(THROTTLES, key)
            throttle = LoginThrottle.from_json(doc.data) if doc else LoginThrottle()
            remaining = throttle.locked(now)
            if remaining is None:
                seconds = throttle.attempt(now, policy)
                if doc is None:
                    await unit.tx.insert(THROTTLES, key, throttle.to_json())
                else:
                    await unit.tx.update(THROTTLES, key, throttle.to_json(), doc.version)
                return Attempt(key, throttle.failures, seconds)
        wait = max(1, int(remaining.total_seconds()) + 1)
        raise AccountLocked(
            f"Too many failed attempts; try again in {wait} seconds",
            errors=[{"field": "username", "message": f"locked for {wait} s"}],
            retry_after_seconds=wait,
        )

    return await retried(once)


async def succeeded(uow: UnitOfWorkFactory, attempt: Attempt) -> None:
    """The password was right: the consecutive-failure count starts again from zero."""

    async def once() -> None:
        async with uow() as unit:
            doc = await unit.tx.get(THROTTLES, attempt.key)
            if doc is not None and doc.data.get("failures"):
                await unit.tx.update(THROTTLES, attempt.key, LoginThrottle().to_json(), doc.version)

    await retried(once)


async def failed(uow: UnitOfWorkFactory, attempt: Attempt, user: User | None) -> None:
    """The attempt stays counted; announce the lock it set on an existing account."""
    if attempt.lock_seconds and user is not None and user.structures:
        async with uow() as unit:
            await unit.emit(
                UserLockedOut(
                    user_id=user.id, failures=attempt.failures, locked_seconds=attempt.lock_seconds
                ),
                structure_id=user.structures[0],
                subject_id=user.id,
            )


async def count_address_request(
    uow: UnitOfWorkFactory, address: str, now: datetime, limit: AddressLimit
) -> None:
    """Count a token request of `address` or refuse it once its window is full.

    As for the lockout, the read and the increment are one write transaction, re-run on a
    concurrent change: N concurrent requests count N, and at most `limit.requests` pass.
    """
    key = address_key(address)

    async def once() -> timedelta | None:
        async with uow() as unit:
            doc = await unit.tx.get(ADDRESS_WINDOWS, key)
            window = AddressWindow.from_json(doc.data) if doc else AddressWindow()
            wait = window.take(now, limit)
            if wait is None:
                if doc is None:
                    await unit.tx.insert(ADDRESS_WINDOWS, key, window.to_json())
                else:
                    await unit.tx.update(ADDRESS_WINDOWS, key, window.to_json(), doc.version)
            return wait

    wait = await retried(once)
    if wait is not None:
        seconds = max(1, int(wait.total_seconds()) + 1)
        raise AddressRateLimited(
            f"Too many token requests from this address; try again in {seconds} seconds",
            errors=[{"field": "client_address", "message": f"rate limited for {seconds} s"}],
            retry_after_seconds=seconds,
        )
