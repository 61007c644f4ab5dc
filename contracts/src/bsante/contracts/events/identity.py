"""Events of the identity service (topic bsante.identity.v1).

Directory events (professionals, structures, imports) concern the national directory, which
belongs to no tenant: their envelope's `structure_id` is `DIRECTORY_TENANT`.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

DIRECTORY_TENANT: Final = "national-directory"

DirectorySource = Literal["annuaire", "manual"]


@event(topics.IDENTITY, name="UserLoggedIn")
class LegacyUserLoggedIn(Payload):
    """A user opened a session (password or CPS card). v1 of `UserLoggedIn`, superseded by v2
    (which identity emits), kept for the consumers of v1."""

    user_id: str
    method: Literal["password", "cps"]


@event(topics.IDENTITY, version=2)
class UserLoggedIn(Payload):
    """A user opened a session: password, CPS card, or Pro Santé Connect (`psc`: e-CPS app or
    card through the national provider). v2: a consumer of v1 would refuse the new method."""

    user_id: str
    method: Literal["password", "cps", "psc"]


@event(topics.IDENTITY)
class ProfessionalRegistered(Payload):
    """A health professional entered the directory (Annuaire Santé import or manual entry)."""

    ps_id_nat: str = Field(
        description="National id: 8 + RPPS or 0 + ADELI (OID 1.2.250.1.71.4.2.1)"
    )
    rpps: str | None = None
    adeli: str | None = None
    profession_code: str | None = Field(None, description="TRE_G15 profession code")
    source: DirectorySource


@event(topics.IDENTITY)
class StructureRegistered(Payload):
    """A structure entered the directory, or a tenant structure was opened on the platform."""

    structure_id: str
    finess: str | None = None
    finess_kind: Literal["EJ", "ET"] | None = Field(
        None, description="EJ legal entity, ET geographic establishment"
    )
    tenant: bool = Field(False, description="True when users act for it on the platform")
    source: DirectorySource


@event(topics.IDENTITY)
class DirectoryImported(Payload):
    """An Annuaire Santé extraction was imported (counts only; the file is not kept)."""

    import_id: str
    lines: int
    professionals_created: int
    professionals_updated: int
    structures_created: int
    activities_upserted: int
    rejected: int


@event(topics.IDENTITY)
class UserCreated(Payload):
    """An account was created, for a professional (by RPPS) or a staff member."""

    user_id: str
    kind: Literal["professional", "staff"]
    ps_id_nat: str | None = None
    created_by: str


@event(topics.IDENTITY)
class UserJoinedStructure(Payload):
    """An existing account now acts for one more structure."""

    user_id: str
    added_by: str


@event(topics.IDENTITY)
class RoleGranted(Payload):
    """A structure administrator granted a role to a user of the structure."""

    user_id: str
    role: str
    granted_by: str


@event(topics.IDENTITY)
class RoleRevoked(Payload):
    """A structure administrator withdrew a role from a user of the structure."""

    user_id: str
    role: str
    revoked_by: str


@event(topics.IDENTITY)
class UserLockedOut(Payload):
    """Repeated failed logins locked an account for a while (security monitoring)."""

    user_id: str
    failures: int
    locked_seconds: int


@event(topics.IDENTITY)
class SigningKeyRotated(Payload):
    """Identity signs new tokens with a new key; the previous one stays in the JWKS a while."""

    kid: str
    previous_kid: str | None = None
