"""The same chassis for other shapes: a workstation agent and a bus-only worker, no HTTP app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from bsante.chassis.auth import CurrentPrincipal
from bsante.chassis.blobs import BlobKind, iterate
from bsante.chassis.bus import Message
from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.chassis.runner import run_headless
from bsante.chassis.service import MissingPart, Service
from bsante.chassis.settings import ServiceSettings
from bsante.chassis.tasks import LongRunning
from bsante.contracts import topics
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import UserLoggedIn

PDF = BlobKind("pdf", max_bytes=1024, media_types=frozenset({"application/pdf"}))


class AgentSettings(ServiceSettings):
    service_name: str = "test-agent"
    workstation: str = "poste-12"


async def eventually_true(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def envelope(user_id: str) -> Envelope:
    payload = UserLoggedIn(user_id=user_id, method="cps")
    return Envelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        producer="test-agent",
        structure_id="structure-1",
        subject_id=user_id,
        correlation_id="c-1",
        payload=payload.model_dump(mode="json"),
    )


async def test_a_workstation_agent_and_a_bus_only_worker(tmp_path: Path) -> None:
    # The agent: no store, no HTTP app, no token verification; a task publishes what it reads.
    agent_settings = AgentSettings(bus_url=f"embedded://{tmp_path}")

    async def read_cards() -> None:
        # Typed settings: `agent.settings.workstation` needs no cast.
        event = envelope(f"user-at-{agent.settings.workstation}")
        await agent.bus.publish(Message(topics.IDENTITY, event.subject_id, event.to_json()))
        await asyncio.Event().wait()

    agent: Service[AgentSettings] = Service(
        agent_settings,
        http=False,
        store=False,
        jwks=False,
        tasks=[LongRunning("card-reader", read_cards)],
    )

    # The worker: store and bus, consumes events, no HTTP app.
    router = EventRouter("test-worker")

    @router.on(UserLoggedIn)
    async def remember(uow: UnitOfWork, event: Envelope, payload: UserLoggedIn) -> None:
        await uow.tx.insert("logins", str(event.event_id), {"user_id": payload.user_id})

    worker = Service(
        ServiceSettings(
            service_name="test-worker",
            store_url=f"sqlite:///{tmp_path / 'worker.db'}",
            bus_url=f"embedded://{tmp_path}",
        ),
        http=False,
        jwks=False,
        events=router,
    )

    for missing in (lambda: agent.store, lambda: agent.app, lambda: worker.app):
        with pytest.raises(MissingPart):
            missing()
    assert not agent.has_store and agent.has_bus and not agent.has_http
    assert [t.name for t in agent.supervisor.tasks] == ["card-reader"], "no outbox, no relay"

    stop_agent, stop_worker = asyncio.Event(), asyncio.Event()
    running = [
        asyncio.create_task(run_headless(worker, stop_worker)),
        asyncio.create_task(run_headless(agent, stop_agent)),
    ]

    async def consumed() -> bool:
        try:
            found = await worker.store.find("logins")
        except Exception:
            return False  # not started yet
        return [d.data["user_id"] for d in found] == ["user-at-poste-12"]

    await eventually_true(consumed)
    assert await agent.readiness() == {"bus": None, "task:card-reader": None}
    assert await worker.readiness() == {
        "store": None,
        "bus": None,
        "task:outbox-relay": None,
        "task:retention-purge": None,
    }
    stop_agent.set()
    stop_worker.set()
    await asyncio.gather(*running)


def test_a_consumer_needs_a_store_and_a_bus() -> None:
    router = EventRouter("needs-store")

    @router.on(UserLoggedIn)
    async def ignore(uow: UnitOfWork, event: Envelope, payload: UserLoggedIn) -> None:
        return None

    with pytest.raises(ValueError, match="needs a store and a bus"):
        Service(ServiceSettings(service_name="needs-store"), store=False, events=router)


async def test_a_service_without_token_verification_answers_401_not_500() -> None:
    routes = APIRouter()

    @routes.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"user": principal.user_id}

    svc = Service(
        ServiceSettings(service_name="no-tokens"),
        routers=[routes],
        store=False,
        bus=False,
        jwks=False,
    )
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        response = await client.get("/me", headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_service_with_blobs_opens_checks_and_collects_them(tmp_path: Path) -> None:
    settings = ServiceSettings(
        service_name="archive",
        store_url=f"sqlite:///{tmp_path / 'archive.db'}",
        bus_url=f"embedded://{tmp_path}",
        blob_url=f"file://{tmp_path / 'blobs'}",
    )
    plain = Service(settings, http=False, jwks=False)
    with pytest.raises(MissingPart):
        _ = plain.blobs  # not asked for: no blob store, no blobs.db
    svc = Service(settings, http=False, jwks=False, blobs=True)
    assert "blob-collector" in [t.name for t in svc.supervisor.tasks]
    await svc.start()
    try:
        info = await svc.blobs.put(iterate(b"%PDF-1.7 ..."), kind=PDF, media_type="application/pdf")
        assert (await svc.blobs.read(info.sha256)) == b"%PDF-1.7 ..."
        assert (await svc.readiness())["blobs"] is None
    finally:
        await svc.stop()
    assert not await svc.blobs.ping(), "closed with the service"
    assert (tmp_path / "blobs").is_dir()
