"""mss-connector settings (env prefix MSS_CONNECTOR_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class Mailbox(BaseModel):
    """One MSSanté mailbox at its operator: SMTP submission and IMAP, over TLS."""

    address: str = Field(max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")
    username: str = Field("", description="Login at the operator (default: the address)")
    password: SecretStr = SecretStr("")
    password_file: str = Field("", description="File holding the password, read when empty")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "implicit"] = "starttls"
    imap_host: str = "127.0.0.1"
    imap_port: int = Field(993, ge=1, le=65535)
    imap_tls: Literal["implicit", "starttls"] = "implicit"
    imap_folder: str = "INBOX"
    poll: bool = Field(True, description="Poll this mailbox's INBOX for inbound mail")
    ca_file: str = Field("", description="CA bundle (PEM) the operator's certificates chain to")
    client_cert_file: str = Field("", description="TLS client certificate (PEM), if required")
    client_key_file: str = ""

    @property
    def login(self) -> str:
        return self.username or self.address

    def secret(self) -> str:
        value = self.password.get_secret_value()
        if not value and self.password_file:
            value = Path(self.password_file).read_text().strip()
        return value


class StructureMailboxes(BaseModel):
    """A structure's organisational mailbox, and the personal mailboxes of some of its users."""

    organisational: Mailbox
    users: dict[str, Mailbox] = Field(default_factory=dict, description="user id -> mailbox")


class MssConnectorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MSS_CONNECTOR_", extra="ignore")

    service_name: str = "mss-connector"
    store_url: str = "sqlite:///var/mss-connector.db"
    port: int = 8087
    documents_url: str = Field(
        "http://127.0.0.1:8000/api/documents",
        description="Base URL of the documents service (asked with the connector's token)",
    )
    patient_url: str = Field(
        "http://127.0.0.1:8000/api/patient",
        description="Base URL of the patient service (the INS look-up, with the connector's token)",
    )
    documents_timeout_seconds: float = Field(10.0, gt=0, le=120)
    mailboxes: dict[str, StructureMailboxes] = Field(
        default_factory=dict, description="JSON: structure id -> its mailboxes"
    )
    max_recipients: int = Field(10, ge=1, le=100, description="Recipients per message")
    max_documents: int = Field(10, ge=1, le=100, description="Documents per message")
    max_inbound_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, description="Larger inbound messages are quarantined unread"
    )
    poll_interval_seconds: float = Field(30.0, ge=0.05, le=3600)
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=300)
    patient_mail_domain: str = "patient.mssante.fr"
