"""Use cases of the forms service, one module per family.

A handler takes narrow ports (`Ports`: committed reads, a unit of work, the patient directory,
the clock), the caller and a command, and returns domain values; it raises the errors of
`bsante.forms.errors`, which the HTTP layer maps to problems.
"""

from bsante.forms.handlers.common import Caller, Ports

__all__ = ["Caller", "Ports"]
