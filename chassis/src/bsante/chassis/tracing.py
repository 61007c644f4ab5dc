"""OpenTelemetry setup and the helpers that carry trace context through the bus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

_configured: TracerProvider | None = None


class _RecordWhenExported(Sampler):
    """Records spans only once something receives them (an exporter, a test's processor).

    Unrecorded spans still carry a valid trace context: trace ids reach the logs, the outbox
    rows and the bus headers as before; only the attributes nobody would read are skipped.
    """

    def __init__(self) -> None:
        self.recording = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if self.recording:
            return ALWAYS_ON.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "RecordWhenExported"


_sampler = _RecordWhenExported()


def spans_recorded() -> bool:
    """Whether spans are recorded (something receives them); else they may be skipped."""
    return _sampler.recording


def configure_tracing(
    service_name: str, otlp_endpoint: str = "", processor: SpanProcessor | None = None
) -> TracerProvider:
    """Install the global tracer provider once per process; later calls reuse it."""
    global _configured
    if _configured is None:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), sampler=_sampler
        )
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(otlp_endpoint)))
            _sampler.recording = True
        trace.set_tracer_provider(provider)
        _configured = provider
    if processor is not None:
        _configured.add_span_processor(processor)
        _sampler.recording = True
    return _configured


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate)."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str]) -> Context:
    return propagate.extract(dict(headers))
