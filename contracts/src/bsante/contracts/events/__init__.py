"""Integration event payloads, one module per producing service; importing registers them."""

from bsante.contracts.events.audit import AccessAction, PatientDataAccessed
from bsante.contracts.events.base import Payload, event
from bsante.contracts.events.card_bridge import (
    CardInserted,
    CardRemoved,
    VitaleBeneficiary,
    VitaleCardRead,
)
from bsante.contracts.events.dmp_connector import (
    DmpDocumentSubmitted,
    DmpDocumentUpdated,
    DmpOperation,
    DmpSubmissionFailed,
)
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
    DmpOppositionRecorded,
    IdentityStatus,
    InsQualified,
    PatientCreated,
    PatientsMerged,
    PatientUpdated,
)
from bsante.contracts.events.sla_monitor import (
    IncidentClosed,
    IncidentOpened,
    SlaBreached,
    SlaDeadlineNear,
    TicketOpened,
    TicketStatusChanged,
)

__all__ = [
    "CardInserted",
    "CardRemoved",
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
    "DmpDocumentSubmitted",
    "DmpDocumentUpdated",
    "DmpOperation",
    "DmpSubmissionFailed",
    "DmpOppositionRecorded",
    "JobFailed",
    "MssDeliveryFailed",
    "MssMessageAcknowledged",
    "MssMessageReceived",
    "MssMessageSent",
    "MssRecipientStatus",
    "JobFailureReason",
    "IncidentClosed",
    "IncidentOpened",
    "SlaBreached",
    "SlaDeadlineNear",
    "TicketOpened",
    "TicketStatusChanged",
]
