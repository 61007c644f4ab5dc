"""Logging in: password (throttled per user name) and CPS card."""

from __future__ import annotations

from dataclasses import dataclass

from bsante.chassis.errors import AuthenticationFailed
from bsante.chassis.store import Store
from bsante.identity import cps_login
from bsante.identity.accounts import Accounts
from bsante.identity.cps import CpsLoginVerifier
from bsante.identity.domain import LockoutPolicy, normalise_username, throttle_key
from bsante.identity.handlers import throttle
from bsante.identity.handlers.sessions import SessionPorts, TokenPair, open_session
from bsante.identity.ports import PasswordHasher


class WrongCredentials(AuthenticationFailed):
    def __init__(self) -> None:
        super().__init__("Unknown user or wrong password")


@dataclass(frozen=True)
class PasswordLogin:
    username: str
    password: str
    structure_id: str | None


async def password_login(
    cmd: PasswordLogin,
    *,
    sessions: SessionPorts,
    accounts: Accounts,
    hasher: PasswordHasher,
    lockout: LockoutPolicy,
) -> TokenPair:
    """Repeated failures lock the user name for a growing time.

    Unknown user names are throttled exactly like existing ones, and cost the same argon2
    verification, so the answer never tells whether an account exists.
    """
    username = normalise_username(cmd.username)
    attempt = await throttle.count_attempt(
        sessions.uow, throttle_key(username), sessions.clock(), lockout
    )
    user = await accounts.by_username(username)
    ok = await hasher.verify(user.password_hash if user else None, cmd.password)
    if not ok or user is None or not user.active:
        await throttle.failed(sessions.uow, attempt, user)
        raise WrongCredentials()
    await throttle.succeeded(sessions.uow, attempt)
    return await open_session(sessions, user, method="password", acting_structure=cmd.structure_id)


@dataclass(frozen=True)
class CardLogin:
    nonce: str
    certificate: str
    signature: str
    intermediates: list[str]
    structure_id: str | None


async def card_login(
    cmd: CardLogin,
    *,
    sessions: SessionPorts,
    accounts: Accounts,
    challenges: Store,
    verifier: CpsLoginVerifier | None,
) -> TokenPair:
    """CPS card login: nonce, certificate chain and CRL, signature, then the account by PSIdNat."""
    holder = await cps_login.verify_card_login(
        challenges,
        verifier,
        nonce=cmd.nonce,
        certificate=cmd.certificate,
        signature=cmd.signature,
        intermediates=cmd.intermediates,
    )
    user_id = await accounts.account_of_professional(holder.ps_id_nat.value)
    found = await accounts.get(user_id) if user_id else None
    if found is None or not found[0].active:
        raise cps_login.CpsLoginRefused("No active account for this card's professional")
    return await open_session(sessions, found[0], method="cps", acting_structure=cmd.structure_id)
