"""Routes that read a patient's form data across submissions: DLU prefill, transmissions,
surveillance readings and chart."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime

from bsante.forms.handlers import views
from bsante.forms.http.deps import PortsDep, Reader, caller
from bsante.forms.http.schemas import (
    Prefill,
    ReadingList,
    TransmissionList,
    reading_out,
    transmission_out,
)

router = APIRouter()

PERIOD_HELP = "A date-time with an offset, or a plain date (UTC day; `to` then includes it)"
From = Annotated[AwareDatetime | date | None, Query(alias="from", description=PERIOD_HELP)]
To = Annotated[AwareDatetime | date | None, Query(alias="to", description=PERIOD_HELP)]


@router.get("/patients/{patient_id}/dlu/prefill", response_model=Prefill, tags=["dlu"])
async def dlu_prefill(
    patient_id: uuid.UUID, principal: Reader, ports: PortsDep, request: Request
) -> Prefill:
    """What a new DLU draft would be prefilled with: the record's identity, address, phone
    and médecin traitant, and the latest AGGIR."""
    form, answers = await views.dlu_prefill(ports, caller(principal, request), patient_id)
    return Prefill(form_id=form.id, form_version=form.version, answers=answers)


@router.get(
    "/patients/{patient_id}/transmissions", response_model=TransmissionList, tags=["transmissions"]
)
async def list_transmissions(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    request: Request,
    target: Annotated[str | None, Query(max_length=200)] = None,
) -> TransmissionList:
    """Completed targeted transmissions, oldest first; `target` keeps those whose target
    contains it (case and accents ignored). A corrected transmission shows its latest version."""
    found = await views.transmissions(ports, caller(principal, request), patient_id, target)
    return TransmissionList(
        patient_id=patient_id, target=target, items=[transmission_out(s) for s in found]
    )


@router.get(
    "/patients/{patient_id}/surveillance/readings",
    response_model=ReadingList,
    tags=["surveillance"],
)
async def surveillance_readings(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    request: Request,
    start: From = None,
    end: To = None,
) -> ReadingList:
    """Vital signs of the period (default: the last 30 days), oldest first."""
    found = await views.surveillance_rounds(
        ports, caller(principal, request), patient_id, start, end
    )
    return ReadingList(
        patient_id=patient_id,
        start=found.start,
        end=found.end,
        items=[reading_out(s) for s in found.rounds],
    )


MEDIA_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}


def _image_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The chart",
        }
    }


async def _chart(
    fmt: views.ChartFormat,
    patient_id: uuid.UUID,
    principal: Any,
    ports: Any,
    request: Request,
    start: Any,
    end: Any,
) -> Response:
    image = await views.surveillance_chart(
        ports, caller(principal, request), patient_id, start, end, fmt
    )
    return Response(image, media_type=MEDIA_TYPES[fmt], headers={"Cache-Control": "no-store"})


@router.get(
    "/patients/{patient_id}/surveillance/chart.svg",
    response_class=Response,
    responses=_image_responses("image/svg+xml"),
    tags=["surveillance"],
)
async def surveillance_chart_svg(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    request: Request,
    start: From = None,
    end: To = None,
) -> Response:
    """The surveillance chart of the period as SVG (default: the last 30 days); a period
    without readings gives a chart saying so."""
    return await _chart("svg", patient_id, principal, ports, request, start, end)


@router.get(
    "/patients/{patient_id}/surveillance/chart.png",
    response_class=Response,
    responses=_image_responses("image/png"),
    tags=["surveillance"],
)
async def surveillance_chart_png(
    patient_id: uuid.UUID,
    principal: Reader,
    ports: PortsDep,
    request: Request,
    start: From = None,
    end: To = None,
) -> Response:
    """The surveillance chart of the period as PNG (default: the last 30 days); a period
    without readings gives a chart saying so."""
    return await _chart("png", patient_id, principal, ports, request, start, end)
