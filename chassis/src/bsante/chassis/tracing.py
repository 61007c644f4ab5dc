"""OpenTelemetry setup and the helpers that carry trace context through the bus."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Receive, Scope, Send

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


class _SpansWhenRecorded:
    """The app's middleware stack with OpenTelemetry's server span while spans are recorded;
    otherwise the same stack without it, under a bare trace context (the caller's
    `traceparent`, else fresh ids): trace ids still reach the logs and the outbox rows, for a
    fraction of the instrumentation's cost per request. Decided per request, so an exporter
    configured once the app serves (a test's processor) gets its spans."""

    def __init__(self, traced: ASGIApp, plain: ASGIApp) -> None:
        # `app`: FastAPI's native telemetry looks for OpenTelemetry's middleware through it,
        # and then stays out of the way (one server span, never two).
        self.app = traced
        self.plain = plain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or _sampler.recording:
            await self.app(scope, receive, send)
            return
        if trace.get_current_span().get_span_context().is_valid:
            # Mounted under another app that set the context already (the embedded gateway).
            await self.plain(scope, receive, send)
            return
        parent = _remote_context(scope)
        span = NonRecordingSpan(
            SpanContext(
                trace_id=parent.trace_id if parent else random.getrandbits(128) or 1,
                span_id=random.getrandbits(64) or 1,
                is_remote=False,
                trace_flags=parent.trace_flags if parent else TraceFlags(TraceFlags.DEFAULT),
                trace_state=parent.trace_state if parent else None,
            )
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.plain(scope, receive, send)
        finally:
            otel_context.detach(token)


def _remote_context(scope: Scope) -> SpanContext | None:
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name in (b"traceparent", b"tracestate")
    }
    if not carrier:
        return None
    found = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def instrument_app(app: FastAPI) -> None:
    """OpenTelemetry server spans on `app`, paid for only while spans are recorded."""
    plain = app.build_middleware_stack
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    traced = app.build_middleware_stack

    def build() -> ASGIApp:
        return _SpansWhenRecorded(traced(), plain())

    app.build_middleware_stack = build  # type: ignore[method-assign]
