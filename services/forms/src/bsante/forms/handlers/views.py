"""Use cases that read across submissions: surveillance readings and chart, transmissions,
the DLU prefill, and the definitions themselves."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bsante.chassis.text import fold
from bsante.forms import chart, definitions, repository
from bsante.forms.definitions import dlu, surveillance, transmission
from bsante.forms.domain import Submission
from bsante.forms.engine import JSON, FormDefinition
from bsante.forms.handlers.common import (
    Caller,
    Moment,
    Ports,
    audited_read,
    context,
    definition,
    patient,
    period,
)
from bsante.forms.vitals import AnyReading

# matplotlib's rc_context is process-global: one chart at a time, off the event loop.
_RENDER_LOCK = asyncio.Lock()
ChartFormat = Literal["svg", "png"]


def latest_definitions() -> list[FormDefinition]:
    return definitions.latest()


def read_definition(form_id: str, version: int | None) -> FormDefinition:
    return definition(form_id, version)


# -- surveillance -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rounds:
    start: datetime
    end: datetime
    rounds: list[Submission]


async def _rounds(
    ports: Ports, caller: Caller, patient_id: uuid.UUID, start: Moment | None, end: Moment | None
) -> Rounds:
    begin, stop = period(start, end, ports.clock())
    await patient(ports, caller, patient_id)
    pid, form = str(patient_id), surveillance.DEFINITION.id
    found = await repository.find(
        ports.store,
        caller.structure,
        pid,
        where={
            "form_id": form,
            "status": "completed",
            "results.measured_at": {
                "$gte": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "$lte": stop.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
        order_by=(("results.measured_at", False),),
    )
    replaced = await repository.superseded(ports.store, caller.structure, pid, form)
    return Rounds(begin, stop, [s for s, _ in found if str(s.id) not in replaced])


async def surveillance_rounds(
    ports: Ports, caller: Caller, patient_id: uuid.UUID, start: Moment | None, end: Moment | None
) -> Rounds:
    """Completed rounds of the period not replaced by a correction, oldest first."""
    found = await _rounds(ports, caller, patient_id, start, end)
    await audited_read(ports, caller, patient_id)
    return found


async def surveillance_chart(
    ports: Ports,
    caller: Caller,
    patient_id: uuid.UUID,
    start: Moment | None,
    end: Moment | None,
    fmt: ChartFormat,
) -> bytes:
    """The chart of the period; an empty period gives a chart saying nothing was measured."""
    found = await _rounds(ports, caller, patient_id, start, end)
    readings: list[AnyReading] = [
        r for s in found.rounds if s.results for r in surveillance.readings(s.results)
    ]
    render = chart.render_svg if fmt == "svg" else chart.render_png
    async with _RENDER_LOCK:
        image = await asyncio.to_thread(render, readings, period=(found.start, found.end))
    await audited_read(ports, caller, patient_id)
    return image


# -- transmissions ------------------------------------------------------------------------------


async def transmissions(
    ports: Ports, caller: Caller, patient_id: uuid.UUID, target: str | None
) -> list[Submission]:
    """Completed targeted transmissions whose target contains `target` (case, accents and
    punctuation ignored), oldest first; a corrected one shows its latest version."""
    await patient(ports, caller, patient_id)
    pid, form = str(patient_id), transmission.DEFINITION.id
    found = await repository.find(
        ports.store, caller.structure, pid, where={"form_id": form, "status": "completed"}
    )
    replaced = await repository.superseded(ports.store, caller.structure, pid, form)
    wanted = fold(target) if target else None
    items = [
        s
        for s, _ in found
        if str(s.id) not in replaced and (wanted is None or wanted in fold(s.answers["target"]))
    ]
    items.sort(key=lambda s: ((s.results or {})["occurred_at"], s.completed_at or s.updated_at))
    await audited_read(ports, caller, patient_id)
    return items


# -- DLU ----------------------------------------------------------------------------------------


async def dlu_prefill(
    ports: Ports, caller: Caller, patient_id: uuid.UUID
) -> tuple[FormDefinition, JSON]:
    """What a new DLU draft would be prefilled with (patient record, latest AGGIR)."""
    form = definition(dlu.DEFINITION.id)
    assert form.prefill is not None
    facts = await patient(ports, caller, patient_id)
    ctx = await context(ports, caller, facts, form)
    await audited_read(ports, caller, patient_id)
    return form, form.prefill(ctx)
