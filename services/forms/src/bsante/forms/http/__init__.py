"""Forms HTTP API: definitions, submissions (draft, complete, correct), results, surveillance
chart, targeted transmissions and the DLU prefill.

Routers only translate HTTP to the use cases of `bsante.forms.handlers` and back. Every route
names the action it needs; everything is scoped to the acting structure (another structure's
submission or patient answers 404), and every read or write of a patient's form data records
an access-audit event in the same unit of work.
"""

from fastapi import APIRouter

from bsante.chassis.openapi import problems
from bsante.forms.http import definitions, internal, patient_views, submissions

# Most routes ask the patient service about the patient: 503 when it does not answer.
router = APIRouter(responses=problems(503))
router.include_router(definitions.router)
router.include_router(submissions.router)
router.include_router(patient_views.router)
router.include_router(internal.router)

__all__ = ["router"]
