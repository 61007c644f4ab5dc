"""The rendering probe: the SLA monitor's synthetic transaction for document production.

It renders a fixed sample report (fictitious patient and author, no one's data) to PDF/A
through the same code path as a real document (off the event loop), so a broken renderer,
missing fonts or a saturated worker pool show up in the availability figures. Nothing is
stored and nothing is audited: no patient data is touched.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.cpu import run_cpu
from bsante.contracts.permissions import Action
from bsante.documents import pdf, samples

router = APIRouter(prefix="/probes", tags=["probes"])
Monitor = Annotated[Principal, allowed(Action.VIEW_SLA)]


class Rendered(BaseModel):
    media_type: str
    size: int
    sha256: str
    render_ms: float


def _render() -> bytes:
    page = pdf.ReportPage(
        title="Compte rendu de test (sonde de rendu)",
        organisation=samples.organisation(),
        patient=samples.patient(with_ins=False),
        author=samples.author(),
        document_date=date(2026, 1, 1),
    )
    return pdf.render_body_pdf(page, samples.body(table_rows=3), samples.FIELD_VALUES)


@router.post("/rendering", response_model=Rendered)
async def probe_rendering(_: Monitor) -> Rendered:
    """Render the sample report to PDF/A-2b now; answers its size, hash and rendering time."""
    started = time.perf_counter()
    rendered = await run_cpu(_render)
    return Rendered(
        media_type="application/pdf",
        size=len(rendered),
        sha256=hashlib.sha256(rendered).hexdigest(),
        render_ms=round((time.perf_counter() - started) * 1000, 1),
    )
