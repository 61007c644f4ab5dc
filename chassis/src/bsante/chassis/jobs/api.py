"""Ops routes over a service's jobs: list, inspect, retry a failed one (role ops)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.jobs import JobState, get_job, list_jobs, retry_job
from bsante.chassis.store import Store
from bsante.contracts.permissions import Action

Operator = Annotated[Principal, allowed(Action.MANAGE_PLATFORM)]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def jobs_router(store: Store, *, prefix: str = "/ops/jobs") -> APIRouter:
    """The routes, bound to the service's store; mount it on the service's app."""
    router = APIRouter(prefix=prefix, tags=["ops"])

    @router.get("")
    async def list_(
        _: Operator,
        state: JobState | None = None,
        kind: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        jobs, total = await list_jobs(store, state=state, kind=kind, limit=limit, offset=offset)
        # The list leaves the payloads out; inspect one job to see its payload.
        return {"items": [j.to_json(with_payload=False) for j in jobs], "total": total}

    @router.get("/{job_id}")
    async def inspect(_: Operator, job_id: JobId) -> dict[str, Any]:
        return (await get_job(store, job_id)).to_json()

    @router.post("/{job_id}/retry")
    async def retry(operator: Operator, job_id: JobId) -> dict[str, Any]:
        return (await retry_job(store, job_id, by=operator.user_id)).to_json()

    return router
