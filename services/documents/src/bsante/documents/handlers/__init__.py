"""Use cases of the documents service, one module per family.

A handler takes narrow ports (`Ports`: committed reads, a unit of work, the blob store, the
peers, the sealer, the conformance check, the clock), the caller and a command, and returns
domain values; it raises the refusals of `bsante.documents.domain` (chassis `Refusal`s),
which the HTTP layer maps to problems.
"""

from bsante.documents.handlers.common import Caller, Ports

__all__ = ["Caller", "Ports"]
