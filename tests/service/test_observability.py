"""Traces across HTTP and the bus, redacted logs, metrics and health endpoints."""

from __future__ import annotations

import io
import json

from kit import PATIENT, Platform, eventually  # type: ignore[import-not-found]
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bsante.chassis.logging import configure_logging
from bsante.chassis.tracing import configure_tracing


async def test_one_trace_from_the_http_request_to_the_consumer(platform: Platform) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("test", processor=SimpleSpanProcessor(exporter))
    headers = await platform.login()
    exporter.clear()
    created = await platform.create_patient(headers)
    assert created.status_code == 201

    def consumer_spans() -> list:  # type: ignore[type-arg]
        # sla-monitor's consumer (patient consumes its own events too, for the timeline)
        return [
            s
            for s in exporter.get_finished_spans()
            if s.name == "PatientCreated process"
            and s.attributes.get("bsante.service") == "sla-monitor"
        ]

    async def consumed() -> bool:
        return bool(consumer_spans())

    await eventually(consumed)
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.name in ("POST /api/patient", "POST /patients")]
    assert server, [s.name for s in spans]
    trace_id = server[0].context.trace_id
    consumer = consumer_spans()[0]
    assert consumer.context.trace_id == trace_id
    assert consumer.attributes["bsante.service"] == "sla-monitor"
    publish = [s for s in spans if s.name == "bsante.patient.v1 publish"]
    assert publish and publish[0].context.trace_id == trace_id
    assert consumer.parent is not None and consumer.parent.span_id == publish[0].context.span_id


async def test_logs_of_a_patient_creation_hold_no_identity_traits(platform: Platform) -> None:
    configure_tracing("test")
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        headers = await platform.login()
        traits = {**PATIENT, "birth_name": "QUATREBARBES", "birth_given_names": "Eulalie"}
        created = await platform.create_patient(headers, **traits)
        assert created.status_code == 201
        await platform.create_patient(headers, birth_name="Q" * 300)  # a rejected one too

        async def consumed() -> bool:
            return "event_handled" in stream.getvalue()

        await eventually(consumed)
    finally:
        configure_logging("INFO")
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/patients" for line in lines)
    assert all("trace_id" in line for line in lines if line.get("event") == "event_handled")
    for secret in ("QUATREBARBES", "Eulalie", "1941-03-02", "02/03/1941", "QQQQ"):
        assert secret.lower() not in text.lower(), secret


async def test_metrics_and_health(platform: Platform) -> None:
    headers = await platform.login()
    await platform.create_patient(headers)
    metrics = await platform.client.get("/metrics")
    assert metrics.status_code == 200
    assert 'bsante_http_requests_total{method="POST",route="/patients"' in metrics.text
    for prefix in ("", "/api/identity", "/api/patient", "/api/sla-monitor"):
        assert (await platform.client.get(f"{prefix}/health/live")).status_code == 200
        ready = await platform.client.get(f"{prefix}/health/ready")
        assert ready.status_code == 200, prefix
    service_metrics = await platform.client.get("/api/patient/metrics")
    assert service_metrics.status_code == 200


async def test_ready_fails_when_the_store_is_unreachable(platform: Platform) -> None:
    patient = platform.services["patient"]
    await patient.store.close()
    try:
        ready = await platform.client.get("/api/patient/health/ready")
        assert ready.status_code == 503
        assert ready.json()["errors"] == [{"field": "store", "message": "unreachable"}]
        gateway = await platform.client.get("/health/ready")
        assert gateway.status_code == 503
        assert (await platform.client.get("/api/patient/health/live")).status_code == 200
    finally:
        await patient.store.start()


async def test_ready_fails_when_the_bus_is_unreachable(platform: Platform) -> None:
    sla = platform.services["sla-monitor"]
    await sla.bus.stop()
    try:
        ready = await platform.client.get("/api/sla-monitor/health/ready")
        assert ready.status_code == 503
        assert {"field": "bus", "message": "unreachable"} in ready.json()["errors"]
    finally:
        await sla.bus.start()


async def test_openapi_and_asyncapi_documents(platform: Platform) -> None:
    openapi = (await platform.client.get("/openapi.json")).json()
    assert "/api/patient/patients" in openapi["paths"]
    assert "/api/identity/auth/token" in openapi["paths"]
    assert "/api/sla-monitor/usage/patients-created" in openapi["paths"]
    asyncapi = (await platform.client.get("/asyncapi.json")).json()
    assert asyncapi["asyncapi"] == "3.0.0"
