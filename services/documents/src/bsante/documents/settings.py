"""Documents settings (env prefix DOCUMENTS_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings
from bsante.documents.signing import SealingSettings


class DocumentsSettings(ServiceSettings, SealingSettings):
    """The service's settings, and the sealing ones (`DOCUMENTS_SIGNING_KEY_FILE`, ...)."""

    model_config = SettingsConfigDict(env_prefix="DOCUMENTS_", extra="ignore")

    service_name: str = "documents"
    store_url: str = "sqlite:///var/documents.db"
    blob_url: str = "file://var/blobs/documents"
    port: int = 8085
    # Uploaded documents (multipart) may be larger than JSON bodies: their routes allow
    # `UPLOAD_BODY_BYTES` (http/received.py), and the blob store keeps at most this.
    max_upload_bytes: int = Field(
        20_000_000, ge=1_000, le=20_000_000, description="Largest uploaded document"
    )
    max_editor_bytes: int = Field(
        512_000, ge=1_000, le=10_000_000, description="Largest editor JSON of a body"
    )
    id_root: str = Field(
        "1.2.250.1.999.1.1",
        pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$",
        description="OID root of the documents' CDA ids (the structure's own arc in production)",
    )
    ipp_root: str = Field(
        "1.2.250.1.999.1.2",
        pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$",
        description="OID root of the structure's IPPs in the CDA recordTarget",
    )
    cisis_kit: str = Field(
        "",
        description="Folder of the ANS CI-SIS test kit; empty: searched (BSANTE_CISIS_KIT, "
        "../shared/standards/ci-sis); absent: documents are signed without validation",
    )
    patient_url: str = Field(
        "http://127.0.0.1:8000/api/patient", description="Base URL of the patient service"
    )
    identity_url: str = Field(
        "http://127.0.0.1:8000/api/identity", description="Base URL of identity (directory)"
    )
    forms_url: str = Field(
        "http://127.0.0.1:8000/api/forms", description="Base URL of the forms service"
    )
    peer_timeout_seconds: float = Field(5.0, gt=0, le=60)
    card_bridge_url: str = Field(
        "",
        description="The card bridge agent's local API (signing with the signer's own CPS; "
        "same workstation only, e.g. http://127.0.0.1:8088); empty: CPS signing is refused",
    )
    card_bridge_timeout_seconds: float = Field(
        30.0, gt=0, le=120, description="A card signature, PIN included, is slow"
    )
    cps_trust_anchor_files: list[str] = Field(
        default_factory=list,
        description="PEM CA certificates CPS signatures are verified to (JSON list): the "
        "IGC-Santé roots and intermediates in production, the test CA in tests",
    )
    seed_demo: bool = Field(True, description="Seed the demo templates of the demo structures")
