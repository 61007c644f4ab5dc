"""Sessions: access tokens, opaque refresh tokens (stored hashed, rotated on use), logout.

An access token cannot be revoked: it lives `access_token_ttl_seconds` (15 min by default) and
every service verifies it locally. Logout and refresh-token reuse revoke the *session*, so no new
access token comes out of it; the last one issued stays valid until it expires.

A refresh token is used once: refreshing returns a new pair and marks the old token used.
Presenting a used token again means it was copied: the whole session is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bsante.chassis.auth import issue_token
from bsante.chassis.errors import Unauthorized
from bsante.chassis.messaging import Messaging
from bsante.chassis.store import ConcurrencyConflict, Store
from bsante.contracts.events import UserLoggedIn
from bsante.identity.domain import User
from bsante.identity.keys import KeyRing
from bsante.identity.settings import IdentitySettings

SESSIONS = "sessions"
REFRESH_TOKENS = "refresh_tokens"
USERS = "users"
PROFESSIONALS = "professionals"

Method = Literal["password", "cps"]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    acting_structure: str
    session_id: str


async def profession_of(store: Store, user: User) -> str | None:
    """A professional's profession comes from the directory; the account's own value otherwise."""
    if user.ps_id_nat:
        doc = await store.get(PROFESSIONALS, user.ps_id_nat)
        if doc is not None and doc.data.get("profession_code"):
            return str(doc.data["profession_code"])
    return user.profession


async def _access_token(
    keyring: KeyRing, settings: IdentitySettings, store: Store, user: User, acting: str | None
) -> tuple[str, str]:
    structures, acting_structure = user.session_claims(acting)
    token = issue_token(
        await keyring.signing_key(),
        subject=user.id,
        structures=structures,
        roles={s: user.roles.get(s, []) for s in structures},
        profession=await profession_of(store, user),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        extra={
            "name": user.display_name,
            "acting_structure": acting_structure,
            "ps_id_nat": user.ps_id_nat,
        },
    )
    return token, acting_structure


async def open_session(
    messaging: Messaging,
    keyring: KeyRing,
    settings: IdentitySettings,
    user: User,
    *,
    method: Method,
    acting_structure: str | None,
) -> TokenPair:
    """Log the user in: access token, refresh token of a new session, `UserLoggedIn`."""
    access, acting = await _access_token(keyring, settings, messaging.store, user, acting_structure)
    now = datetime.now(UTC)
    session_id = str(uuid.uuid4())
    refresh = secrets.token_urlsafe(32)
    ttl = settings.refresh_token_ttl_seconds
    async with messaging.unit_of_work() as uow:
        await uow.tx.insert(
            SESSIONS,
            session_id,
            {
                "user_id": user.id,
                "method": method,
                "acting_structure": acting,
                "created_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=ttl)).isoformat(),
                "revoked": False,
                "revoked_reason": None,
            },
        )
        await uow.tx.insert(
            REFRESH_TOKENS,
            token_digest(refresh),
            {"session_id": session_id, "used": False, "created_at": now.isoformat()},
        )
        await uow.emit(
            UserLoggedIn(user_id=user.id, method=method), structure_id=acting, subject_id=user.id
        )
    return TokenPair(access, settings.access_token_ttl_seconds, refresh, ttl, acting, session_id)


class InvalidRefreshToken(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Invalid, expired or revoked refresh token; log in again")


async def _revoke(store: Store, session_id: str, reason: str) -> None:
    for _ in range(3):
        doc = await store.get(SESSIONS, session_id)
        if doc is None or doc.data.get("revoked"):
            return
        try:
            async with store.transaction() as tx:
                await tx.update(
                    SESSIONS,
                    session_id,
                    {**doc.data, "revoked": True, "revoked_reason": reason},
                    doc.version,
                )
            return
        except ConcurrencyConflict:
            continue


async def refresh_session(
    messaging: Messaging, keyring: KeyRing, settings: IdentitySettings, refresh_token: str
) -> TokenPair:
    store = messaging.store
    digest = token_digest(refresh_token)
    token_doc = await store.get(REFRESH_TOKENS, digest)
    if token_doc is None:
        raise InvalidRefreshToken()
    session_id = str(token_doc.data["session_id"])
    if token_doc.data.get("used"):
        # Someone replays a refresh token that was already exchanged: kill the session.
        await _revoke(store, session_id, "refresh token reused")
        raise InvalidRefreshToken()
    session = await store.get(SESSIONS, session_id)
    now = datetime.now(UTC)
    if (
        session is None
        or session.data.get("revoked")
        or datetime.fromisoformat(session.data["expires_at"]) <= now
    ):
        raise InvalidRefreshToken()
    user_doc = await store.get(USERS, str(session.data["user_id"]))
    user = User.from_json(user_doc.data) if user_doc else None
    acting = str(session.data["acting_structure"])
    if user is None or not user.active or not user.acts_for(acting):
        await _revoke(store, session_id, "account changed")
        raise InvalidRefreshToken()
    access, _ = await _access_token(keyring, settings, store, user, acting)
    new_refresh = secrets.token_urlsafe(32)
    try:
        async with store.transaction() as tx:
            await tx.update(
                REFRESH_TOKENS,
                digest,
                {**token_doc.data, "used": True, "used_at": now.isoformat()},
                token_doc.version,
            )
            await tx.insert(
                REFRESH_TOKENS,
                token_digest(new_refresh),
                {"session_id": session_id, "used": False, "created_at": now.isoformat()},
            )
    except ConcurrencyConflict:
        # Two refreshes raced with the same token: one of them is a copy.
        await _revoke(store, session_id, "refresh token reused")
        raise InvalidRefreshToken() from None
    remaining = int((datetime.fromisoformat(session.data["expires_at"]) - now).total_seconds())
    return TokenPair(
        access, settings.access_token_ttl_seconds, new_refresh, remaining, acting, session_id
    )


async def logout(store: Store, refresh_token: str) -> None:
    """Revoke the session the refresh token belongs to (unknown tokens are ignored)."""
    token_doc = await store.get(REFRESH_TOKENS, token_digest(refresh_token))
    if token_doc is not None:
        await _revoke(store, str(token_doc.data["session_id"]), "logout")
