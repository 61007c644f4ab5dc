"""Events of the DMP connector (topic bsante.dmp-connector.v1).

`subject_id` is the document id; the patient is named by its record id, never by its INS.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event
from bsante.contracts.events.documents import DmpVisibility

DmpOperation = Literal["submit", "visibility", "withdraw"]


@event(topics.DMP_CONNECTOR)
class DmpDocumentSubmitted(Payload):
    """The DMP acknowledged a document (ITI-41 RegistryResponse Success)."""

    document_id: uuid.UUID
    patient_id: uuid.UUID
    unique_id: str = Field(max_length=128, description="XDSDocumentEntry.uniqueId (the CDA id)")
    replaces_unique_id: str | None = Field(
        default=None, max_length=128, description="The entry replaced (RPLC association)"
    )
    visibility: list[DmpVisibility] = Field(default_factory=list, max_length=3)
    duplicate: bool = Field(
        default=False,
        description="The DMP already held this very document (a repeat after a lost answer)",
    )
    submitted_at: datetime


@event(topics.DMP_CONNECTOR)
class DmpSubmissionFailed(Payload):
    """The DMP refused a document, or the connector gave up on it; not retried by itself."""

    document_id: uuid.UUID
    patient_id: uuid.UUID
    operation: DmpOperation = "submit"
    error_code: str = Field(
        max_length=100, description="XDS error code (XDSRegistryMetadataError...) or local reason"
    )
    error_text: str = Field(max_length=300)
    failed_at: datetime


@event(topics.DMP_CONNECTOR)
class DmpDocumentUpdated(Payload):
    """The DMP accepted a change of a submitted document: its visibility, or its withdrawal."""

    document_id: uuid.UUID
    patient_id: uuid.UUID
    unique_id: str = Field(max_length=128)
    operation: Literal["visibility", "withdraw"]
    visibility: list[DmpVisibility] = Field(default_factory=list, max_length=3)
    updated_by: str = Field(description="User id who asked for the change")
    updated_at: datetime
