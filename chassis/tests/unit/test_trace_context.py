"""An instrumented app runs its handlers under a trace context whether or not spans are
recorded: the caller's `traceparent`, else fresh ids (for the logs and the outbox rows)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry import trace

from bsante.chassis.tracing import configure_tracing, instrument_app

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/trace")
    async def current() -> dict[str, object]:
        span = trace.get_current_span().get_span_context()
        return {"valid": span.is_valid, "trace_id": format(span.trace_id, "032x")}

    instrument_app(app)
    return app


async def _trace(app: FastAPI, headers: dict[str, str] | None = None) -> dict[str, object]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/trace", headers=headers)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_the_callers_trace_is_continued() -> None:
    configure_tracing("test")
    app = _app()
    found = await _trace(app, {"traceparent": f"00-{CALLER_TRACE}-b7ad6b7169203331-01"})
    assert found == {"valid": True, "trace_id": CALLER_TRACE}


async def test_a_request_without_traceparent_gets_a_fresh_trace() -> None:
    configure_tracing("test")
    app = _app()
    first, second = await _trace(app), await _trace(app)
    assert first["valid"] and second["valid"]
    assert first["trace_id"] != second["trace_id"]
    assert first["trace_id"] != "0" * 32
