"""Integration event payloads, one module per producing service; importing registers them."""

from bsante.contracts.events.audit import AccessAction, PatientDataAccessed
from bsante.contracts.events.base import Payload, event
from bsante.contracts.events.identity import UserLoggedIn
from bsante.contracts.events.patient import IdentityStatus, PatientCreated

__all__ = [
    "AccessAction",
    "PatientDataAccessed",
    "IdentityStatus",
    "Payload",
    "PatientCreated",
    "UserLoggedIn",
    "event",
]
