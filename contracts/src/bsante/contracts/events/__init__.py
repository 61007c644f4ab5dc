"""Integration event payloads, one module per producing service; importing registers them."""

from bsante.contracts.events.audit import AccessAction, PatientDataAccessed
from bsante.contracts.events.base import Payload, event
from bsante.contracts.events.card_bridge import VitaleBeneficiary, VitaleCardRead
from bsante.contracts.events.documents import (
    DmpIntent,
    DmpVisibility,
    DocumentReplaced,
    DocumentSigned,
    ExternalDocumentAttached,
    MssRecipient,
)
from bsante.contracts.events.forms import FormCompleted
from bsante.contracts.events.identity import (
    DIRECTORY_TENANT,
    DirectoryImported,
    ProfessionalRegistered,
    RoleGranted,
    RoleRevoked,
    SigningKeyRotated,
    StructureRegistered,
    UserCreated,
    UserJoinedStructure,
    UserLockedOut,
    UserLoggedIn,
)
from bsante.contracts.events.mss_connector import (
    MssDeliveryFailed,
    MssMessageAcknowledged,
    MssMessageReceived,
    MssMessageSent,
    MssRecipientStatus,
)
from bsante.contracts.events.operations import JobFailed, JobFailureReason
from bsante.contracts.events.patient import (
    IdentityStatus,
    InsQualified,
    PatientCreated,
    PatientsMerged,
    PatientUpdated,
)

__all__ = [
    "AccessAction",
    "PatientDataAccessed",
    "IdentityStatus",
    "Payload",
    "PatientCreated",
    "PatientUpdated",
    "InsQualified",
    "PatientsMerged",
    "VitaleBeneficiary",
    "VitaleCardRead",
    "UserLoggedIn",
    "DIRECTORY_TENANT",
    "DirectoryImported",
    "ProfessionalRegistered",
    "RoleGranted",
    "RoleRevoked",
    "SigningKeyRotated",
    "StructureRegistered",
    "UserCreated",
    "UserJoinedStructure",
    "UserLockedOut",
    "event",
    "FormCompleted",
    "DmpIntent",
    "DmpVisibility",
    "DocumentReplaced",
    "DocumentSigned",
    "ExternalDocumentAttached",
    "MssRecipient",
    "JobFailed",
    "MssDeliveryFailed",
    "MssMessageAcknowledged",
    "MssMessageReceived",
    "MssMessageSent",
    "MssRecipientStatus",
    "JobFailureReason",
]
