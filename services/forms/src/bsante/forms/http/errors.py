"""The HTTP edge of the forms service's errors: each domain refusal as a problem+json."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from bsante.chassis.errors import problem
from bsante.forms.errors import ConflictError, FormsError, InvalidRequest, NotFoundError

STATUS: dict[type[FormsError], int] = {
    InvalidRequest: 422,
    NotFoundError: 404,
    ConflictError: 409,
}


def status_of(error: FormsError) -> int:
    return next((STATUS[c] for c in type(error).__mro__ if c in STATUS), 422)


def install(app: FastAPI) -> None:
    @app.exception_handler(FormsError)
    async def _forms_error(request: Request, exc: FormsError) -> JSONResponse:
        return problem(
            status_of(exc), exc.detail, kind=exc.kind, errors=exc.errors, instance=request.url.path
        )
