"""Use cases of the patient service, one module per use-case family.

Each handler takes narrow ports (`Ports`: committed reads, a unit of work, the clock; the INSi
gateway where it is called), the caller and a command; it raises the domain errors of
`bsante.patient.errors`, which the HTTP layer maps to problems.
"""

from bsante.patient.handlers.common import Ports, audit, load, require_active

__all__ = ["Ports", "audit", "load", "require_active"]
