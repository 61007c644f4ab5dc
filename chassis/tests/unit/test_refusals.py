"""Neutral refusals: a use case raises a class without a status, the HTTP layer maps it."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from fastapi import FastAPI

from bsante.chassis.cpu import run_cpu
from bsante.chassis.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConflictError,
    NotFoundError,
    Refusal,
    RuleViolation,
    TooManyAttempts,
    Unavailable,
    install_problem_handlers,
)


class SeatTaken(ConflictError):
    """A refusal of some domain, two levels below the mapped class."""


class UnmappedRefusal(Refusal):
    pass


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuleViolation("no"), 422),
        (NotFoundError("no"), 404),
        (SeatTaken("no"), 409),
        (AccessDenied("no"), 403),
        (AuthenticationFailed("no"), 401),
        (TooManyAttempts("no", retry_after_seconds=7), 429),
        (Unavailable("no"), 503),
        (UnmappedRefusal("no"), 422),
    ],
)
async def test_refusals_become_problems_with_their_mapped_status(
    error: Refusal, status: int
) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/x")
    async def refuse() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/x")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "no"
    assert ("Retry-After" in response.headers) == (status == 429)
    assert ("WWW-Authenticate" in response.headers) == (status == 401)


async def test_run_cpu_runs_in_another_thread_and_returns_the_result() -> None:
    results = await asyncio.gather(
        *(run_cpu(lambda n: (n, threading.get_ident()), i) for i in range(4))
    )
    assert [n for n, _ in results] == [0, 1, 2, 3]
    assert threading.get_ident() not in {ident for _, ident in results}
