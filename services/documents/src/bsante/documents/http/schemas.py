"""Request and response bodies of the documents API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bsante.chassis.text import SafeText
from bsante.contracts.events.documents import DmpVisibility, MssRecipient
from bsante.documents.domain import Artefact, Document, Origin, Status, Template
from bsante.documents.templates import FieldType, catalogue

Code = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.\-]+$")


class FieldOut(BaseModel):
    name: str
    label: str
    type: FieldType
    group: str


def catalogue_out() -> list[FieldOut]:
    return [FieldOut(name=f.name, label=f.label, type=f.type, group=f.group) for f in catalogue()]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeText = Field(min_length=1, max_length=200)
    type_code: str = Code
    class_code: str = Code
    title: SafeText = Field(min_length=1, max_length=200)
    body: dict[str, Any] = Field(description="Editor JSON: {sections: [...]}")


class TemplateOut(BaseModel):
    id: uuid.UUID
    version: int
    name: str
    type_code: str
    class_code: str
    title: str
    body: dict[str, Any]
    fields: list[str]
    active: bool
    updated_at: datetime
    updated_by: str


def template_out(template: Template) -> TemplateOut:
    return TemplateOut.model_validate(template.model_dump())


class NewDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: uuid.UUID
    title: SafeText | None = Field(None, min_length=1, max_length=200)


class DocumentEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: dict[str, Any] | None = Field(None, description="Editor JSON replacing the body")
    title: SafeText | None = Field(None, min_length=1, max_length=200)


class CardSignerIn(BaseModel):
    """The signer's own CPS in the workstation's reader, through the paired card bridge."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["cachet", "cps"] = Field(
        "cachet", description="cachet: the structure's seal; cps: the signer's own CPS card"
    )
    pin: SecretStr | None = Field(None, description="The CPS PIN (sent to the card only)")
    pairing_token: SecretStr | None = Field(
        None, description="The card bridge's pairing token (what the web app holds)"
    )
    reader: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _card_given(self) -> CardSignerIn:
        if self.mode == "cps":
            missing = [n for n in ("pin", "pairing_token") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"signing with the CPS needs {' and '.join(missing)}")
            pin = self.pin.get_secret_value() if self.pin else ""
            token = self.pairing_token.get_secret_value() if self.pairing_token else ""
            if not 1 <= len(pin) <= 16 or not 1 <= len(token) <= 200:
                raise ValueError("pin: 1 to 16 characters; pairing_token: 1 to 200")
        return self


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signer: CardSignerIn = Field(
        default_factory=CardSignerIn,
        description="Who seals: the structure's cachet (default) or the signer's own CPS",
    )

    dmp: bool | None = Field(
        None, description="Feed the DMP; default: yes when the patient's INS is qualifiée"
    )
    dmp_visibility: list[DmpVisibility] = Field(default_factory=list, max_length=3)
    mssante: list[MssRecipient] = Field(default_factory=list, max_length=50)


class ArtefactOut(BaseModel):
    sha256: str
    size: int
    media_type: str


class DocumentOut(BaseModel):
    id: uuid.UUID
    version: int = Field(description="Store version (the ETag); see cda_version")
    patient_id: uuid.UUID
    origin: Origin
    status: Status
    set_id: uuid.UUID
    cda_version: int
    parent_document_id: uuid.UUID | None
    replaced_by: uuid.UUID | None
    template_id: uuid.UUID | None
    template_version: int | None
    type_code: str | None
    class_code: str | None
    title: str
    body: dict[str, Any] | None
    values: dict[str, str]
    author_id: str
    author_text: str | None
    document_date: date | None
    created_at: datetime
    updated_at: datetime
    finalized_at: datetime | None
    signed_at: datetime | None
    signed_by: str | None
    signed_with: Literal["cachet", "cps"] | None
    pdf: ArtefactOut | None
    cda: ArtefactOut | None
    cda_signature: ArtefactOut | None
    file: ArtefactOut | None
    dmp_requested: bool | None


def _artefact(value: Artefact | None) -> ArtefactOut | None:
    return ArtefactOut.model_validate(value.model_dump()) if value is not None else None


def document_out(document: Document, version: int) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        version=version,
        patient_id=document.patient_id,
        origin=document.origin,
        status=document.status,
        set_id=document.set_id,
        cda_version=document.version,
        parent_document_id=document.parent_document_id,
        replaced_by=document.replaced_by,
        template_id=document.template_id,
        template_version=document.template_version,
        type_code=document.type_code,
        class_code=document.class_code,
        title=document.title,
        body=document.body,
        values=document.values,
        author_id=document.author_id,
        author_text=document.author_text,
        document_date=document.document_date,
        created_at=document.created_at,
        updated_at=document.updated_at,
        finalized_at=document.finalized_at,
        signed_at=document.signed_at,
        signed_by=document.signed_by,
        signed_with=document.signed_with,
        pdf=_artefact(document.pdf),
        cda=_artefact(document.cda),
        cda_signature=_artefact(document.cda_signature),
        file=_artefact(document.file),
        dmp_requested=document.sharing.dmp_requested if document.sharing else None,
    )


class DocumentList(BaseModel):
    items: list[DocumentOut]


class VerificationOut(BaseModel):
    document_id: uuid.UUID
    valid: bool
    sealed: bool
    cda_valid: bool
    pdf_valid: bool
    signer: str | None
    problems: list[str]


class ReceivedMetadata(BaseModel):
    """The `metadata` part of a document attached by a connector."""

    model_config = ConfigDict(extra="ignore")

    origin: str = Field("mssante", pattern=r"^mssante$")
    source_id: str = Field(min_length=1, max_length=300)
    media_type: str | None = Field(None, max_length=100)
    type_code: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z0-9_.\-]+$")
    title: SafeText | None = Field(None, max_length=200)
    document_date: date | None = None
    author: SafeText | None = Field(None, max_length=200)


class Attached(BaseModel):
    document_id: uuid.UUID
