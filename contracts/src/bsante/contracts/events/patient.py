"""Events of the patient service (topic bsante.patient.v1)."""

from __future__ import annotations

import uuid
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
