"""The gateway's live event stream over real HTTP (uvicorn), read with an SSE client and a
WebSocket client: per user and structure, Last-Event-ID replay, a bounded buffer."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from httpx_sse import aconnect_sse

from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_platform

MEDECIN = ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026")
INFIRMIER = ("infirmier@tilleuls.demo", "Infirmier-Tilleuls-2026")
BUFFER = 10


@dataclass
class Live:
    base: str
    client: httpx.AsyncClient

    async def token(self, credentials: tuple[str, str]) -> str:
        response = await self.client.post(
            "/api/identity/auth/token",
            json={"username": credentials[0], "password": credentials[1]},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def card_event(self, token: str, reader: str, event: str = "inserted") -> None:
        response = await self.client.post(
            "/api/patient/patients/card-events",
            json={
                "event": event,
                "workstation_id": "poste-1",
                "reader": reader,
                "card_kind": "vitale",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 202, response.text


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    app = build_platform(tmp_path, GatewaySettings(stream_buffer=BUFFER))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield Live(base, client)
    server.should_exit = True
    await task


async def next_event(events: AsyncIterator[Any]) -> Any:
    return await asyncio.wait_for(anext(events), 30)


async def test_each_user_gets_their_events_and_a_reconnect_replays_the_missed_ones(
    live: Live,
) -> None:
    medecin, infirmier = await live.token(MEDECIN), await live.token(INFIRMIER)
    headers = {"Authorization": f"Bearer {medecin}"}
    async with aconnect_sse(live.client, "GET", "/events", headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.aiter_sse()
        await live.card_event(infirmier, "lecteur infirmier")  # not for the médecin
        await live.card_event(medecin, "Virtual PCD 00 01")
        first = await next_event(events)
    assert first.event == "card.inserted"
    assert json.loads(first.data)["reader"] == "Virtual PCD 00 01"  # the nurse's was filtered
    # Missed while away, replayed on reconnect with Last-Event-ID, in order.
    await live.card_event(medecin, "Virtual PCD 00 01", "removed")
    await live.card_event(medecin, "Virtual PCD 00 00")
    replay = {**headers, "Last-Event-ID": first.id}
    async with aconnect_sse(live.client, "GET", "/events", headers=replay) as source:
        events = source.aiter_sse()
        got = [await next_event(events), await next_event(events)]
    assert [(e.event, json.loads(e.data)["reader"]) for e in got] == [
        ("card.removed", "Virtual PCD 00 01"),
        ("card.inserted", "Virtual PCD 00 00"),
    ]


async def test_a_reconnect_past_the_buffer_is_told_to_reload(live: Live) -> None:
    medecin = await live.token(MEDECIN)
    headers = {"Authorization": f"Bearer {medecin}"}
    async with aconnect_sse(live.client, "GET", "/events", headers=headers) as source:
        events = source.aiter_sse()
        await live.card_event(medecin, "reader-0")
        first = await next_event(events)
        # A flood: more than the buffer holds, while this client keeps reading.
        for n in range(1, BUFFER + 5):
            await live.card_event(medecin, f"reader-{n}")
        for n in range(1, BUFFER + 5):
            assert json.loads((await next_event(events)).data)["reader"] == f"reader-{n}"
    replay = {**headers, "Last-Event-ID": first.id}
    async with aconnect_sse(live.client, "GET", "/events", headers=replay) as source:
        reset = await next_event(source.aiter_sse())
    assert reset.event == "stream.reset"
    for stale in ("00000000-1", "garbage"):
        async with aconnect_sse(
            live.client, "GET", "/events", headers={**headers, "Last-Event-ID": stale}
        ) as source:
            assert (await next_event(source.aiter_sse())).event == "stream.reset"


async def test_the_stream_wants_a_valid_token(live: Live) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await live.client.get("/events", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_websocket_stream(live: Live) -> None:
    medecin = await live.token(MEDECIN)
    url = live.base.replace("http://", "ws://") + "/events/ws"
    async with websockets.connect(url, subprotocols=["bsante.bearer", medecin]) as ws:  # type: ignore[list-item]
        await live.card_event(medecin, "Virtual PCD 00 01")
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert message["event"] == "card.inserted"
    assert message["data"]["reader"] == "Virtual PCD 00 01" and message["id"]
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url, subprotocols=["bsante.bearer", "forged"]):  # type: ignore[list-item]
            pass


async def _serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started
    return server, task, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


async def test_the_distributed_gateway_passes_a_stream_on_as_it_comes() -> None:
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from bsante.gateway.app import build_proxy

    release = asyncio.Event()

    async def slow(_: Any) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            await release.wait()  # the rest only once the client saw the first event
            yield b"data: second\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    upstream = await _serve(Starlette(routes=[Route("/stream", slow)]))
    gateway = await _serve(
        build_proxy(GatewaySettings(services={"up": upstream[2]}, stream_enabled=False))
    )
    try:
        async with (
            httpx.AsyncClient(base_url=gateway[2], timeout=30) as client,
            aconnect_sse(client, "GET", "/api/up/stream") as source,
        ):
            events = source.aiter_sse()
            assert (await next_event(events)).data == "first"  # a buffering proxy hangs here
            release.set()
            assert (await next_event(events)).data == "second"
    finally:
        for server, task, _ in (gateway, upstream):
            server.should_exit = True
            await task


async def test_a_service_down_leaves_the_distributed_gateway_ready_and_says_so_apart() -> None:
    """One service down must not take every gateway replica out of its Kubernetes Service:
    the gateway's readiness is its own; /health/services is the aggregate."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bsante.gateway.app import build_proxy

    async def ready(_: Any) -> JSONResponse:
        return JSONResponse({"status": "ready"})

    upstream = await _serve(Starlette(routes=[Route("/health/ready", ready)]))
    with socket.socket() as unused:  # a port nothing listens on: the service that is down
        unused.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{unused.getsockname()[1]}"
    settings = GatewaySettings(services={"up": upstream[2], "down": down}, stream_enabled=False)
    gateway = await _serve(build_proxy(settings))
    try:
        async with httpx.AsyncClient(base_url=gateway[2], timeout=30) as client:
            own = await client.get("/health/ready")
            assert own.status_code == 200 and own.json()["checks"] == {"gateway": True}
            services = await client.get("/health/services")
            assert services.status_code == 503
            assert services.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in services.json()["errors"]] == ["down"]
            assert (await client.get("/api/down/anything")).status_code in (502, 503)
    finally:
        for server, task, _ in (gateway, upstream):
            server.should_exit = True
            await task
