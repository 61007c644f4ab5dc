"""Sessions: access tokens, opaque refresh tokens (stored hashed, rotated on use), logout.

An access token cannot be revoked: it lives `access_token_ttl_seconds` (15 min by default) and
every service verifies it locally. Logout and refresh-token reuse revoke the *session*, so no new
access token comes out of it; the last one issued stays valid until it expires.

A refresh token is exchanged once for a new pair. Two tabs of one browser often refresh with
the same token at the same moment, so for `refresh_grace_seconds` after the exchange the same
token returns the *same* new pair again instead of counting as a copy. The pair is kept for
that only in the old token's record, encrypted (AES-256-GCM) under a key derived from the old
token itself (HKDF-SHA-256); the record is found by the token's SHA-256, which is not that key.
So the store never holds a usable token: reading the database gives neither the successor nor
a way to compute it, and only someone presenting the old token can decrypt it. After the grace
window the old token is a copy in use: the whole session is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bsante.chassis.auth import SigningKey, issue_token
from bsante.chassis.errors import AuthenticationFailed
from bsante.chassis.store import Document, Transaction
from bsante.contracts.events import UserLoggedIn
from bsante.identity.accounts import USERS, profession_of
from bsante.identity.domain import User
from bsante.identity.handlers import retried
from bsante.identity.keys import KeyRing
from bsante.identity.ports import Clock, UnitOfWorkFactory

SESSIONS = "sessions"
REFRESH_TOKENS = "refresh_tokens"

Method = Literal["password", "cps", "psc"]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    issuer: str
    audience: str
    access_ttl_seconds: int
    refresh_ttl_seconds: int
    refresh_grace_seconds: int


@dataclass(frozen=True)
class SessionPorts:
    uow: UnitOfWorkFactory
    keyring: KeyRing
    policy: SessionPolicy
    clock: Clock


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    acting_structure: str
    session_id: str


class InvalidRefreshToken(AuthenticationFailed):
    def __init__(self) -> None:
        super().__init__("Invalid, expired or revoked refresh token; log in again")


def _access_token(
    key: SigningKey, policy: SessionPolicy, user: User, acting: str | None, profession: str | None
) -> tuple[str, str]:
    structures, acting_structure = user.session_claims(acting)
    token = issue_token(
        key,
        subject=user.id,
        structures=structures,
        roles={s: user.roles.get(s, []) for s in structures},
        profession=profession,
        issuer=policy.issuer,
        audience=policy.audience,
        ttl_seconds=policy.access_ttl_seconds,
        extra={
            "name": user.display_name,
            "acting_structure": acting_structure,
            "ps_id_nat": user.ps_id_nat,
        },
    )
    return token, acting_structure


def _token_record(session_id: str, now: datetime, predecessor: str | None = None) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "used": False,
        "created_at": now.isoformat(),
        "predecessor": predecessor,
    }


async def open_session(
    ports: SessionPorts,
    user: User,
    *,
    method: Method,
    acting_structure: str | None,
    provider: dict[str, Any] | None = None,
) -> TokenPair:
    """Log the user in: access token, refresh token of a new session, `UserLoggedIn`.

    `provider` is what an external identity provider's logout needs later (kept in the
    session, e.g. Pro Santé Connect's ID token for its end-session endpoint)."""
    key = await ports.keyring.signing_key()
    policy = ports.policy
    now = ports.clock()
    session_id = str(uuid.uuid4())
    refresh = secrets.token_urlsafe(32)
    async with ports.uow() as uow:
        access, acting = _access_token(
            key, policy, user, acting_structure, await profession_of(uow.tx, user)
        )
        await uow.tx.insert(
            SESSIONS,
            session_id,
            {
                "user_id": user.id,
                "method": method,
                "acting_structure": acting,
                "created_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=policy.refresh_ttl_seconds)).isoformat(),
                "revoked": False,
                "revoked_reason": None,
                "provider": provider,
            },
        )
        await uow.tx.insert(REFRESH_TOKENS, token_digest(refresh), _token_record(session_id, now))
        await uow.emit(
            UserLoggedIn(user_id=user.id, method=method), structure_id=acting, subject_id=user.id
        )
    return TokenPair(
        access, policy.access_ttl_seconds, refresh, policy.refresh_ttl_seconds, acting, session_id
    )


# --- The successor of a rotated token, readable only with that token ------------------------


def _box_key(refresh_token: str) -> AESGCM:
    hkdf = HKDF(hashes.SHA256(), length=32, salt=None, info=b"bsante refresh-token successor")
    return AESGCM(hkdf.derive(refresh_token.encode()))


def seal_successor(refresh_token: str, digest: str, successor: dict[str, Any]) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _box_key(refresh_token).encrypt(nonce, json.dumps(successor).encode(), digest.encode())
    return base64.b64encode(nonce + sealed).decode()


def open_successor(refresh_token: str, digest: str, box: str) -> dict[str, Any] | None:
    raw = base64.b64decode(box)
    try:
        plain = _box_key(refresh_token).decrypt(raw[:12], raw[12:], digest.encode())
    except InvalidTag:
        return None
    value: dict[str, Any] = json.loads(plain)
    return value


async def _revoke(tx: Transaction, session: Document, reason: str) -> None:
    if not session.data.get("revoked"):
        await tx.update(
            SESSIONS,
            session.id,
            {**session.data, "revoked": True, "revoked_reason": reason},
            session.version,
        )


async def _forget_successor(
    tx: Transaction, token: Document, now: datetime, policy: SessionPolicy
) -> None:
    """The successor is exchanged in turn: once its predecessor's grace window has passed, the
    sealed copy of it is dropped, so the store keeps no sealed pair longer than it can serve."""
    previous = token.data.get("predecessor")
    doc = await tx.get(REFRESH_TOKENS, previous) if previous else None
    if doc is None or not doc.data.get("successor"):
        return
    used_at = datetime.fromisoformat(doc.data["used_at"])
    if now - used_at > timedelta(seconds=policy.refresh_grace_seconds):
        await tx.update(REFRESH_TOKENS, doc.id, {**doc.data, "successor": None}, doc.version)


def _remaining(until: str, now: datetime) -> int:
    return max(0, int((datetime.fromisoformat(until) - now).total_seconds()))


async def refresh_session(ports: SessionPorts, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; within the grace window, the same new pair.

    Everything is read and decided in one transaction, re-run if a concurrent refresh changed
    the token in between: the loser then sees the token just used and gets the winner's pair.
    """
    key = await ports.keyring.signing_key()
    policy = ports.policy
    digest = token_digest(refresh_token)

    async def once() -> TokenPair | None:
        now = ports.clock()
        async with ports.uow() as uow:
            token = await uow.tx.get(REFRESH_TOKENS, digest)
            if token is None:
                return None
            session = await uow.tx.get(SESSIONS, str(token.data["session_id"]))
            if (
                session is None
                or session.data.get("revoked")
                or datetime.fromisoformat(session.data["expires_at"]) <= now
            ):
                return None
            if token.data.get("used"):
                used_at = datetime.fromisoformat(token.data["used_at"])
                box = token.data.get("successor")
                if box and now - used_at <= timedelta(seconds=policy.refresh_grace_seconds):
                    pair = open_successor(refresh_token, digest, box)
                    if pair is not None:
                        return TokenPair(
                            pair["access_token"],
                            _remaining(pair["access_expires_at"], now),
                            pair["refresh_token"],
                            _remaining(session.data["expires_at"], now),
                            str(session.data["acting_structure"]),
                            session.id,
                        )
                # A token exchanged earlier is presented again: a copy is in use.
                await _revoke(uow.tx, session, "refresh token reused")
                return None
            user_doc = await uow.tx.get(USERS, str(session.data["user_id"]))
            user = User.from_json(user_doc.data) if user_doc else None
            acting = str(session.data["acting_structure"])
            if user is None or not user.active or not user.acts_for(acting):
                await _revoke(uow.tx, session, "account changed")
                return None
            await _forget_successor(uow.tx, token, now, policy)
            access, _ = _access_token(key, policy, user, acting, await profession_of(uow.tx, user))
            successor = secrets.token_urlsafe(32)
            access_expires_at = now + timedelta(seconds=policy.access_ttl_seconds)
            box = seal_successor(
                refresh_token,
                digest,
                {
                    "access_token": access,
                    "refresh_token": successor,
                    "access_expires_at": access_expires_at.isoformat(),
                },
            )
            await uow.tx.update(
                REFRESH_TOKENS,
                digest,
                {**token.data, "used": True, "used_at": now.isoformat(), "successor": box},
                token.version,
            )
            await uow.tx.insert(
                REFRESH_TOKENS, token_digest(successor), _token_record(session.id, now, digest)
            )
            return TokenPair(
                access,
                policy.access_ttl_seconds,
                successor,
                _remaining(session.data["expires_at"], now),
                acting,
                session.id,
            )

    pair = await retried(once)
    if pair is None:
        raise InvalidRefreshToken()
    return pair


async def logout(uow: UnitOfWorkFactory, refresh_token: str) -> dict[str, Any] | None:
    """Revoke the session the refresh token belongs to (unknown tokens are ignored); return
    the session as it was, or None."""

    async def once() -> dict[str, Any] | None:
        async with uow() as unit:
            token = await unit.tx.get(REFRESH_TOKENS, token_digest(refresh_token))
            if token is None:
                return None
            session = await unit.tx.get(SESSIONS, str(token.data["session_id"]))
            if session is None:
                return None
            await _revoke(unit.tx, session, "logout")
            return session.data

    return await retried(once)
