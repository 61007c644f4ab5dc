"""Prometheus metrics shared by the services of a process, served on /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

HTTP_REQUESTS = Counter(
    "bsante_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bsante_http_request_duration_seconds", "HTTP request duration", ["service", "route"]
)
EVENTS_PUBLISHED = Counter(
    "bsante_events_published_total", "Events published by the outbox relay", ["service", "topic"]
)
EVENTS_CONSUMED = Counter(
    "bsante_events_consumed_total",
    "Events consumed",
    ["service", "event_type", "outcome"],
)
WRITE_TRANSACTIONS = Counter(
    "bsante_sqlite_write_transactions_total",
    "Committed SQLite write transactions, per database file (embedded adapters)",
    ["db"],
)
SQLITE_READS = Counter(
    "bsante_sqlite_reads_total",
    "SQLite reads, per database file, answered on the event loop (cached, quick) or on the "
    "reader's thread (longer, or meeting a lock)",
    ["db", "on"],
)
OUTBOX_FAILURES = Counter(
    "bsante_outbox_publish_failures_total", "Failed outbox publications", ["service"]
)
JOBS_RUN = Counter(
    "bsante_jobs_total",
    "Job attempts by outcome (succeeded, retry, failed, deferred by an open breaker)",
    ["service", "kind", "outcome"],
)
JOBS_FAILED = Counter(
    "bsante_jobs_failed_total", "Jobs that gave up for good", ["service", "kind", "reason"]
)
JOB_BREAKER_OPEN = Gauge(
    "bsante_job_circuit_open",
    "1 while the circuit breaker of an endpoint is not closed",
    ["service", "endpoint"],
)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


OUTBOX_PARKED = Counter(
    "bsante_outbox_parked_total",
    "Outbox rows parked (Failed) after their last allowed publication attempt",
    ["service"],
)
PURGED = Counter(
    "bsante_purged_total",
    "Rows dropped by the retention purge",
    ["service", "what"],  # what = outbox | inbox | log
)
