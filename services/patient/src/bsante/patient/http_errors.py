"""The HTTP edge of the patient service's errors: each domain refusal as a problem+json."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from bsante.chassis.errors import problem
from bsante.patient.errors import (
    ConflictError,
    InsiUnavailable,
    InvalidRequest,
    NotAllowed,
    NotFoundError,
    PatientError,
)

STATUS: dict[type[PatientError], tuple[int, str]] = {
    InvalidRequest: (422, "domain-rule"),
    NotFoundError: (404, "not-found"),
    ConflictError: (409, "conflict"),
    NotAllowed: (403, "forbidden"),
    InsiUnavailable: (503, "insi-unavailable"),
}


def status_of(error: PatientError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in STATUS:
            status, kind = STATUS[cls]
            return status, getattr(error, "kind", kind) if status == 409 else kind
    return 422, "domain-rule"


def install(app: FastAPI) -> None:
    @app.exception_handler(PatientError)
    async def _patient_error(request: Request, exc: PatientError) -> JSONResponse:
        status, kind = status_of(exc)
        return problem(status, exc.detail, kind=kind, errors=exc.errors, instance=request.url.path)
