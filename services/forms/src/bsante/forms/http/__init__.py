"""Forms HTTP API: definitions, submissions (draft, complete, correct), results, surveillance
chart, targeted transmissions and the DLU prefill.

Routers only translate HTTP to the use cases of `bsante.forms.handlers` and back. Every route
names the action it needs; everything is scoped to the acting structure (another structure's
submission or patient answers 404), and every read or write of a patient's form data records
an access-audit event in the same unit of work.
"""

from fastapi import APIRouter

from bsante.forms.http import definitions, patient_views, submissions

router = APIRouter()
router.include_router(definitions.router)
router.include_router(submissions.router)
router.include_router(patient_views.router)

__all__ = ["router"]
