"""Topic names: one per producing service, keyed by the aggregate id (`subject_id`)."""

from typing import Final

from bsante.contracts.manifest import load

IDENTITY: Final = "bsante.identity.v1"
PATIENT: Final = "bsante.patient.v1"
SLA_MONITOR: Final = "bsante.sla-monitor.v1"
FORMS: Final = "bsante.forms.v1"
CARD_BRIDGE: Final = "bsante.card-bridge.v1"
DOCUMENTS: Final = "bsante.documents.v1"
DMP_CONNECTOR: Final = "bsante.dmp-connector.v1"
MSS_CONNECTOR: Final = "bsante.mss-connector.v1"
# Access-audit records, produced by every service that touches patient data, kept by identity.
AUDIT: Final = "bsante.audit.v1"
# Operational facts (a job that gave up, ...), produced by any service, for the SLA monitor.
OPERATIONS: Final = "bsante.operations.v1"

# Every topic the service manifest names as produced or consumed (the list Kafka must create).
ALL: Final[tuple[str, ...]] = load().topics

DLQ_SUFFIX: Final = ".dlq"


def dlq(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return topic + DLQ_SUFFIX
