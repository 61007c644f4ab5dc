"""Documents HTTP API: templates and the merge-field catalogue, documents (draft, edit,
preview, finalize, sign, versions, exports, verification), received documents, and the
service-only routes of the connectors, and the rendering probe of the SLA monitor.

Routers only translate HTTP to the use cases of `bsante.documents.handlers` and back. Every
route names the action (or service scope) it needs; everything is scoped to the acting
structure (another structure's document answers 404), and every read or write of a patient's
documents records an access-audit event in the same unit of work.
"""

from fastapi import APIRouter

from bsante.documents.http import documents, internal, probes, received, templates

router = APIRouter()
router.include_router(templates.router)
router.include_router(documents.router)
router.include_router(received.router)
router.include_router(received.internal)
router.include_router(internal.router)
router.include_router(probes.router)

__all__ = ["router"]
