"""Events of the forms service (topic bsante.forms.v1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event


@event(topics.FORMS)
class FormCompleted(Payload):
    """A form submission was completed (it is immutable from now on; a correction is a new one)."""

    submission_id: uuid.UUID
    patient_id: uuid.UUID
    form_id: str = Field(description="Form definition id, e.g. aggir, mms, dlu")
    form_version: int = Field(ge=1, description="Version of the form definition filled")
    completed_by: str = Field(description="User id of the author")
    completed_at: datetime
    corrects: uuid.UUID | None = Field(
        None, description="The completed submission this one corrects, if any"
    )
    data: dict[str, Any] = Field(
        description="Structured answers, without the fields marked personal (identity traits, "
        "relatives' names and phones): ask the forms service for those"
    )
    results: dict[str, Any] = Field(
        description="Computed results, e.g. gir and rang (aggir), total (mms)"
    )
