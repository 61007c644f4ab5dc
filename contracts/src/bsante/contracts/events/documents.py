"""Events of the documents service (topic bsante.documents.v1).

No content travels on the bus: a consumer that needs the CDA or the PDF fetches it from the
documents service with its service token (`GET /internal/documents/{document_id}/cda` and
`.../pdf`, scope `documents:read`) and checks it against the SHA-256 carried here (claim check).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

# Visibility flags of a document in the DMP (JDV_J77 of the CI-SIS sharing rules, system
# 1.2.250.1.213.1.1.4.13): hidden from professionals, from the patient, from legal guardians.
DmpVisibility = Literal["MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"]


class DmpIntent(BaseModel):
    """Whether, and how, the signed document is to be fed to the patient's DMP."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    requested: bool = Field(description="Default: true when the patient's INS is qualifiée")
    visibility: list[DmpVisibility] = Field(default_factory=list, max_length=3)


class MssRecipient(BaseModel):
    """One MSSanté recipient: a professional or structure of the directory, or the patient."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["professional", "structure", "patient"]
    address: str = Field(
        max_length=256,
        description="MSSanté address; for the patient, resolved by the connector from the INS",
    )
    directory_id: str | None = Field(
        default=None, max_length=100, description="RPPS / PSIdNat or StructIdNat when known"
    )
    read_receipt: bool = Field(default=False, description="Ask for a read acknowledgement (MDN)")


@event(topics.DOCUMENTS)
class DocumentSigned(Payload):
    """A document was signed: its CDA R2 and PDF/A artefacts are final and sealed.

    Carries the sharing intents (DMP feeding, MSSanté recipients) decided at signing time.
    """

    document_id: uuid.UUID
    set_id: uuid.UUID = Field(description="Stable across versions (CDA setId)")
    version: int = Field(ge=1, description="CDA versionNumber")
    parent_document_id: uuid.UUID | None = Field(
        default=None, description="The version this one replaces (relatedDocument RPLC)"
    )
    patient_id: uuid.UUID
    author_id: str = Field(description="User id of the author")
    author_rpps: str | None = Field(default=None, description="Author's PSIdNat, when known")
    legal_authenticator_id: str = Field(description="User id of the signer")
    type_code: str = Field(description="LOINC document type (JDV_J07)")
    class_code: str | None = Field(default=None, description="XDS classCode (JDV_J06)")
    title: str | None = Field(default=None, max_length=200, description="Document title")
    signed_at: datetime
    cda_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    cda_size: int = Field(ge=1)
    pdf_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    pdf_size: int = Field(ge=1)
    dmp: DmpIntent
    mssante: list[MssRecipient] = Field(default_factory=list, max_length=50)


@event(topics.DOCUMENTS)
class DocumentReplaced(Payload):
    """A new signed version replaced an earlier one of the same set."""

    document_id: uuid.UUID = Field(description="The new version")
    replaced_document_id: uuid.UUID
    set_id: uuid.UUID
    version: int = Field(ge=2)
    patient_id: uuid.UUID


@event(topics.DOCUMENTS)
class ExternalDocumentAttached(Payload):
    """A document produced outside the platform (scanned letter, received by MSSanté, brought
    by the patient) was attached to a patient."""

    document_id: uuid.UUID
    patient_id: uuid.UUID
    origin: Literal["upload", "mssante"]
    type_code: str | None = None
    attached_by: str = Field(description="User id, or the service client that attached it")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: str
