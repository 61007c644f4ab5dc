"""Why a use case of the patient record refused a request; no HTTP here (see http_errors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PatientError(Exception):
    """A rule refused the request; `errors` name the fields ({field, message, ...})."""

    def __init__(self, detail: str, *, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)


class InvalidRequest(PatientError):
    """The request's fields break a rule (a trait, a NIR that disagrees with the traits...)."""


class NotFoundError(PatientError):
    """No such thing in the acting structure (another structure's data is not shown)."""


class ConflictError(PatientError):
    """The state of the record forbids it (same person twice, merged record, ...)."""

    kind = "conflict"


class DuplicateSuspected(ConflictError):
    kind = "possible-duplicate"


class NotAllowed(PatientError):
    """The caller may not do this to this thing (e.g. remove another author's post-it)."""


class InsiUnavailable(PatientError):
    """The INSi teleservice did not answer."""


def invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        "The request has invalid fields",
        errors=[{"field": field, "location": "body", "message": message, "type": "value_error"}],
    )
