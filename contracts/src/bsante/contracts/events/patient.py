"""Events of the patient service (topic bsante.patient.v1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

IdentityStatus = Literal["provisoire", "recuperee", "validee", "qualifiee"]


@event(topics.PATIENT)
class PatientCreated(Payload):
    """A patient record was created in a structure."""

    patient_id: uuid.UUID
    identity_status: IdentityStatus
    created_by: str = Field(description="User id of the author")
    origin: Literal["manual", "vitale"] | None = Field(
        default=None, description="How the record was created (absent in early events: manual)"
    )


@event(topics.PATIENT)
class PatientUpdated(Payload):
    """A patient's identity, contact data or identity status changed (names not carried)."""

    patient_id: uuid.UUID
    identity_status: IdentityStatus
    changes: list[str] = Field(description="What changed: traits, contact, identity_status, ins")
    updated_by: str = Field(description="User id of the author")


@event(topics.PATIENT)
class InsQualified(Payload):
    """The patient's identity became qualifiée (RNIV): its INS may now reference health data.

    Raised exactly once per entry into the qualified status. The matricule itself is not
    carried: consumers that must send it (DMP) read it from the patient service.
    """

    patient_id: uuid.UUID
    ins_oid: str = Field(description="OID of the INS assigning authority (NIR, NIA, test)")
    qualified_by: str = Field(description="User id who completed the qualification")
    via: Literal["insi", "document"] = Field(
        description="The step that completed it: INSi recovery or high-trust document check"
    )
    qualified_at: datetime


@event(topics.PATIENT)
class PatientsMerged(Payload):
    """Two records of the same person were merged; the merged one is kept, inactive, as history."""

    kept_patient_id: uuid.UUID
    merged_patient_id: uuid.UUID
    merged_by: str = Field(description="User id of the author")


@event(topics.PATIENT)
class DmpOppositionRecorded(Payload):
    """A professional recorded the patient's opposition to feeding the DMP, or its lifting."""

    patient_id: uuid.UUID
    opposed: bool
    recorded_by: str = Field(description="User id of the professional")
    recorded_at: datetime
