"""Integration contracts shared by every Bureautique Santé service: envelope, events, topics."""

from bsante.contracts.envelope import Envelope, new_event_id
from bsante.contracts.registry import EventSpec, registry

__all__ = ["Envelope", "EventSpec", "new_event_id", "registry"]
