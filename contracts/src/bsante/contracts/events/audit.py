"""Access-audit events (topic bsante.audit.v1), raised wherever patient data is read or written."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

AccessAction = Literal["read", "create", "update", "delete", "export", "search"]


@event(topics.AUDIT)
class PatientDataAccessed(Payload):
    """Someone read or wrote a patient's data (who, acting structure, what, when, from where)."""

    user_id: str
    acting_structure: str
    patient_id: str
    action: AccessAction
    resource: str = Field(description="What was touched, e.g. patient, form, document")
    service: str
    at: datetime
    request_id: str | None = None
    client_address: str | None = None
    service_client: str | None = Field(
        None, description="The service client that accessed the data on the user's behalf"
    )
