"""Pro Santé Connect login wired to the store: a login in progress (state, nonce, PKCE verifier)
kept in identity's store, each state used once, then the account linked to the professional.

The state lives in the store, not in memory, so that the replica receiving the callback need
not be the one that sent the browser away. A state is spent by inserting its use claim
(`psc_state_uses/<state>`) in the same transaction that reads it: of two callbacks carrying
the same state, the second insert fails and its transaction rolls back. Calls to the provider
(code exchange, keys, userinfo) run after that transaction, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bsante.chassis.store import ConcurrencyConflict, DuplicateDocument, Store
from bsante.identity.accounts import Accounts
from bsante.identity.directory.identifiers import PSIdNat
from bsante.identity.handlers.sessions import SessionPorts, TokenPair, open_session
from bsante.identity.psc import (
    PscClient,
    PscLoginRefused,
    PscNoAccount,
    PscNotConfigured,
)

STATES = "psc_states"
STATE_USES = "psc_state_uses"
MAX_STATE_LENGTH = 200


def _configured(client: PscClient | None) -> PscClient:
    if client is None:
        raise PscNotConfigured("Pro Santé Connect login is not configured (IDENTITY_PSC_ISSUER)")
    return client


async def begin(
    store: Store,
    client: PscClient | None,
    *,
    structure_id: str | None,
    now: datetime,
    ttl_seconds: int,
) -> str:
    """Keep a new login's secrets and return the provider's authorization URL."""
    request = await _configured(client).authorization_request()
    async with store.transaction() as tx:
        await tx.insert(
            STATES,
            request.state,
            {
                "nonce": request.nonce,
                "code_verifier": request.code_verifier,
                "structure_id": structure_id,
                "expires_at": (now + timedelta(seconds=ttl_seconds)).isoformat(),
            },
        )
    return request.url


@dataclass(frozen=True)
class PendingLogin:
    nonce: str
    code_verifier: str
    structure_id: str | None


async def consume_state(store: Store, state: str, now: datetime) -> PendingLogin:
    """The login the state belongs to, spent by this call; refused if unknown, expired or used."""
    refused = PscLoginRefused(
        "Unknown, expired or already used state; start the login again", field="state"
    )
    if not state or len(state) > MAX_STATE_LENGTH:
        raise refused
    try:
        async with store.transaction() as tx:
            doc = await tx.get(STATES, state)
            if doc is None:
                raise refused
            await tx.insert(STATE_USES, state, {"used_at": now.isoformat()})
    except (DuplicateDocument, ConcurrencyConflict):
        # Another callback with this state claimed it first (MongoDB may report the race as a
        # write conflict rather than a duplicate key).
        raise refused from None
    if datetime.fromisoformat(doc.data["expires_at"]) <= now:
        raise refused
    return PendingLogin(
        str(doc.data["nonce"]), str(doc.data["code_verifier"]), doc.data.get("structure_id")
    )


@dataclass(frozen=True)
class PscCallback:
    state: str
    code: str | None
    error: str | None


async def complete(
    cmd: PscCallback,
    *,
    store: Store,
    client: PscClient | None,
    sessions: SessionPorts,
    accounts: Accounts,
) -> TokenPair:
    """State, code exchange, ID token, userinfo, then the account linked to the SubjectNameID."""
    psc = _configured(client)
    pending = await consume_state(store, cmd.state, sessions.clock())
    if cmd.error or not cmd.code:
        raise PscLoginRefused(
            f"Pro Santé Connect did not authenticate: {cmd.error or 'no code'}", field="code"
        )
    tokens = await psc.exchange_code(cmd.code, pending.code_verifier)
    claims = await psc.verify(tokens["id_token"], pending.nonce, tokens["access_token"])
    info = await psc.userinfo(tokens["access_token"])
    if info.get("sub") != claims.get("sub"):
        # OIDC Core 5.3.2: a userinfo answer about someone else must not be used.
        raise PscLoginRefused("Userinfo refused: its sub is not the ID token's", field="sub")
    try:
        ps_id_nat = PSIdNat(str(info.get("SubjectNameID", ""))).value
    except ValueError:
        raise PscLoginRefused(
            "Userinfo refused: SubjectNameID is not a PSIdNat", field="SubjectNameID"
        ) from None
    user_id = await accounts.account_of_professional(ps_id_nat)
    found = await accounts.get(user_id) if user_id else None
    if found is None or not found[0].active:
        raise PscNoAccount(
            "No active platform account is linked to this professional in the directory; "
            "a structure administrator must create or link one first"
        )
    return await open_session(
        sessions,
        found[0],
        method="psc",
        acting_structure=pending.structure_id,
        provider={"name": "psc", "id_token": tokens["id_token"]},
    )
