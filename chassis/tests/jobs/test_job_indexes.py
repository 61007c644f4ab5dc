"""A service that runs jobs ensures the jobs' indexes, and they back every query on `_jobs`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from bsante.chassis.jobs import INDEXES, Job, JobKind, JobState, list_jobs, schedule
from bsante.chassis.service import Service
from bsante.chassis.settings import ServiceSettings
from bsante.chassis.store import Index
from bsante.chassis.store.testing import QueryShape, assert_queries_indexed


class Send(BaseModel):
    message_id: str


async def send(job: Job[Send]) -> None:
    return None


SEND = JobKind("mss.send", Send, send)
OWN = Index("messages", ("structure_id", "sent_at"))


async def test_the_worker_and_the_ops_list_query_only_through_declared_indexes(
    tmp_path: Path,
) -> None:
    settings = ServiceSettings(
        service_name="mss-connector",
        store_url=f"sqlite:///{tmp_path / 'mss.db'}",
        bus_url=f"embedded://{tmp_path}",
    )
    service: Service = Service(settings, http=False, jwks=False, jobs=[SEND], indexes=[OWN])
    await service.start()
    try:
        assert set(service.store.declared_indexes()) == {OWN, *INDEXES}
        with assert_queries_indexed(service.store) as shapes:
            async with service.messaging.unit_of_work() as uow:
                await schedule(
                    uow.tx,
                    kind=SEND,
                    idempotency_key="m-1",
                    payload=Send(message_id="m-1"),
                    structure_id="s1",
                )
            assert service.jobs is not None
            assert await service.jobs.run_once() == 1
            for state in (None, JobState.SUCCEEDED):
                for kind in (None, SEND.name):
                    await list_jobs(service.store, state=state, kind=kind)
        due = {"state": {"$in": []}, "kind": {"$in": []}, "due_at": {"$lte": ""}}
        claim = QueryShape.of("_jobs", due, ("due_at",))
        assert claim in shapes
        # The claim, and a page and a count for each of the four filters of the list.
        assert len({s for s in shapes if s.collection == "_jobs"}) == 9
    finally:
        await service.stop()


async def test_a_service_without_jobs_ensures_only_its_own_indexes(tmp_path: Path) -> None:
    settings = ServiceSettings(
        service_name="plain",
        store_url=f"sqlite:///{tmp_path / 'plain.db'}",
        bus_url=f"embedded://{tmp_path}",
    )
    service: Service = Service(settings, http=False, jwks=False, indexes=[OWN])
    await service.start()
    try:
        assert service.store.declared_indexes() == [OWN]
    finally:
        await service.stop()
