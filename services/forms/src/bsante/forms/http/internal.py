"""Service-only route of forms: a patient's latest results (GIR, MMS, vital signs, DLU), read by the
documents service for a document's merge fields with the `forms:read` scope.

The user and the acting structure come in headers and go into the access audit with the
calling client; the calling service has checked the user's rights on its own route.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import BaseModel

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import ServicePrincipal, service_scope
from bsante.contracts.permissions import ServiceScope
from bsante.forms import repository
from bsante.forms.definitions import aggir, dlu, mms, surveillance

router = APIRouter(prefix="/internal/patients", tags=["internal"])
ResultsReader = Annotated[ServicePrincipal, service_scope(ServiceScope.FORMS_READ)]


class Dated(BaseModel):
    value: float | int
    at: datetime


class MmsScore(BaseModel):
    score: int
    at: datetime


class DluAnswers(BaseModel):
    answers: dict[str, Any]
    at: datetime
    submission_id: uuid.UUID


class LatestResults(BaseModel):
    """Each from the latest completed submission no correction replaced; absent when none.
    `dlu`: the answers of the latest DLU (the structured DLU-EHPAD document is built from them)."""

    gir: Dated | None = None
    mms: MmsScore | None = None
    vitals: dict[str, Dated] = {}
    dlu: DluAnswers | None = None


@router.get("/{patient_id}/results", response_model=LatestResults)
async def latest_results(
    patient_id: uuid.UUID,
    caller: ResultsReader,
    svc: ServiceDep,
    x_structure_id: Annotated[
        str, Header(min_length=1, max_length=100, description="The user's acting structure")
    ],
    x_on_behalf_of: Annotated[
        str, Header(min_length=1, max_length=200, description="The user the service acts for")
    ],
) -> LatestResults:
    """The latest GIR, MMS score and vital signs of a patient of the acting structure."""
    pid = str(patient_id)

    async def latest(form_id: str) -> tuple[dict[str, Any], datetime] | None:
        found = await repository.latest_completed(svc.store, x_structure_id, pid, form_id)
        if found is None or found.results is None or found.completed_at is None:
            return None
        return found.results, found.completed_at

    latest_dlu = await repository.latest_completed(
        svc.store, x_structure_id, pid, dlu.DEFINITION.id
    )

    out = LatestResults()
    if (gir := await latest(aggir.DEFINITION.id)) is not None and "gir" in gir[0]:
        out.gir = Dated(value=gir[0]["gir"], at=gir[1])
    if (score := await latest(mms.DEFINITION.id)) is not None and "total" in score[0]:
        out.mms = MmsScore(score=score[0]["total"], at=score[1])
    if (round_ := await latest(surveillance.DEFINITION.id)) is not None:
        results = round_[0]
        at = datetime.fromisoformat(results["measured_at"])
        out.vitals = {k: Dated(value=v, at=at) for k, v in results.get("values", {}).items()}
    if latest_dlu is not None and latest_dlu.completed_at is not None:
        out.dlu = DluAnswers(
            answers=latest_dlu.answers, at=latest_dlu.completed_at, submission_id=latest_dlu.id
        )
    async with svc.messaging.unit_of_work() as uow:
        await uow.audit(
            user_id=x_on_behalf_of,
            acting_structure=x_structure_id,
            patient_id=pid,
            action="read",
            resource="form",
            service_client=caller.client_id,
        )
    return out
