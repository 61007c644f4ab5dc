"""The documents service's model: templates (per structure, versioned) and documents (drafted
from a template, or received from outside), with their lifecycle and its refusals.

Lifecycle of a produced document: draft → final (content frozen, PDF rendered) → signed
(immutable; its CDA and PDF sealed and kept as blobs); a draft may be abandoned. A new version
of a signed document is a fresh draft of the same set (version + 1, parent = the signed one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bsante.chassis.errors import ConflictError, NotFoundError, RuleViolation

Status = Literal["draft", "final", "signed", "abandoned", "received"]
Origin = Literal["produced", "upload", "mssante"]


class DocumentsRefusal(RuleViolation):
    """A rule of the documents service refused the request (422)."""


class NoSuchTemplate(NotFoundError):
    def __init__(self) -> None:
        super().__init__(
            "No such template", errors=[{"field": "template_id", "message": "unknown"}]
        )


class NoSuchDocument(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such document")


class NoSuchPatient(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such patient", errors=[{"field": "patient_id", "message": "unknown"}])


class WrongState(ConflictError):
    """The document's status forbids the request (edit a signed one, sign twice...)."""

    def __init__(self, status: str, wanted: str) -> None:
        super().__init__(
            f"The document is {status}: it cannot be {wanted}",
            errors=[{"field": "status", "message": f"is {status}"}],
        )


@dataclass(frozen=True)
class TemplateDraft:
    """What a user writes of a template."""

    name: str
    type_code: str
    class_code: str
    title: str
    body: dict[str, Any]


class Template(BaseModel):
    """One version of a structure's template; `version` is its store version."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    structure_id: str
    version: int = 1
    name: str
    type_code: str
    class_code: str
    title: str
    body: dict[str, Any]
    fields: list[str] = Field(default_factory=list)
    active: bool = True
    seeded: bool = False
    created_at: datetime
    updated_at: datetime
    updated_by: str


class Artefact(BaseModel):
    """A blob of the document (PDF, CDA, uploaded file)."""

    sha256: str
    size: int
    media_type: str


class Sharing(BaseModel):
    dmp_requested: bool
    dmp_visibility: list[str] = Field(default_factory=list)
    mssante: list[dict[str, Any]] = Field(default_factory=list)


class Document(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    structure_id: str
    patient_id: uuid.UUID
    origin: Origin = "produced"
    status: Status
    set_id: uuid.UUID
    version: int = 1
    parent_document_id: uuid.UUID | None = None
    template_id: uuid.UUID | None = None
    template_version: int | None = None
    type_code: str | None = None
    class_code: str | None = None
    title: str
    body: dict[str, Any] | None = None
    # Merge-field values taken when the draft was created.
    values: dict[str, str] = Field(default_factory=dict)
    # What the PDF and the CDA say about the patient, author and structure (taken at creation).
    facts: dict[str, Any] = Field(default_factory=dict)
    author_id: str
    document_date: date | None = None
    author_text: str | None = None
    created_at: datetime
    updated_at: datetime
    finalized_at: datetime | None = None
    finalized_by: str | None = None
    signed_at: datetime | None = None
    signed_by: str | None = None
    # Who sealed the artefacts: the structure's cachet, or the signer's own CPS card.
    signed_with: Literal["cachet", "cps"] | None = None
    abandoned_at: datetime | None = None
    pdf: Artefact | None = None
    cda: Artefact | None = None
    # The detached XAdES signature of the CDA (the CDA stays schema-valid).
    cda_signature: Artefact | None = None
    file: Artefact | None = None
    sharing: Sharing | None = None
    source_id: str | None = None
    replaced_by: uuid.UUID | None = None

    @property
    def is_produced(self) -> bool:
        return self.origin == "produced"
