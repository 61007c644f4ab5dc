"""OpenTelemetry setup and the helpers that carry trace context through the bus."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured: TracerProvider | None = None


def configure_tracing(
    service_name: str, otlp_endpoint: str = "", processor: SpanProcessor | None = None
) -> TracerProvider:
    """Install the global tracer provider once per process; later calls reuse it."""
    global _configured
    if _configured is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(otlp_endpoint)))
        trace.set_tracer_provider(provider)
        _configured = provider
    if processor is not None:
        _configured.add_span_processor(processor)
    return _configured


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate)."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str]) -> Context:
    return propagate.extract(dict(headers))
