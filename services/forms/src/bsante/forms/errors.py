"""Why a use case of the forms service refused a request; no HTTP here (see http/errors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FormsError(Exception):
    """A rule refused the request; `errors` name the fields ({field, message, ...})."""

    kind = "domain-rule"

    def __init__(self, detail: str, *, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)


class InvalidRequest(FormsError):
    """The request breaks a rule of its fields (a period, a version...)."""


class NotFoundError(FormsError):
    """No such form, submission or patient for the acting structure."""

    kind = "not-found"


class ConflictError(FormsError):
    """The submission's state forbids it (completed, already corrected, still a draft)."""

    kind = "conflict"
