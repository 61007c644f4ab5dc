"""structlog JSON logs with service, trace and correlation ids, and a redaction processor.

Health data must never reach the logs: keys that name personal traits are masked whatever
their value, and values that look like a NIR/INS or a calendar date are masked wherever they are.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from bsante.chassis import context

REDACTED = "[redacted]"

SENSITIVE_KEYS = frozenset(
    {
        "name",
        "names",
        "birth_name",
        "family_name",
        "used_name",
        "first_name",
        "first_names",
        "given_name",
        "given_names",
        "used_first_name",
        "birth_date",
        "birthdate",
        "date_of_birth",
        "birth_place",
        "nir",
        "nia",
        "ins",
        "matricule",
        "matricule_ins",
        "password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "address",
        "email",
        "phone",
        "content",
        "body",
        "text",
        "input",
        "query_string",
    }
)

# 13 to 15 characters shaped like a NIR/NIA (sex digit, then digits with Corsica's 2A/2B).
_NIR = re.compile(
    r"(?<![0-9A-Za-z])[1-478][0-9]{4}(?:[0-9]{2}|2[AaBb])[0-9]{6}(?:[0-9]{2})?(?![0-9])"
)
# A bare calendar date (timestamps with a time part are kept: they are event times).
_DATE = re.compile(r"\b(?:\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4})\b(?![T ]\d{2}:)")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _DATE.sub(REDACTED, _NIR.sub(REDACTED, value))
    if isinstance(value, Mapping):
        return {k: (REDACTED if _sensitive(k) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _sensitive(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SENSITIVE_KEYS


# Keys whose values the chassis writes itself (ids, route templates, statuses, times): they
# cannot hold personal data, so the patterns are not run over them on every request.
_SAFE_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "service",
        "method",
        "route",
        "status",
        "duration_ms",
        "trace_id",
        "span_id",
        "correlation_id",
        "request_id",
        "group",
        "topic",
        "event_type",
    }
)


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys and NIR/date-shaped values."""
    for key in list(event_dict):
        if key in _SAFE_KEYS:
            continue
        if _sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def add_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event_dict.setdefault("trace_id", format(span.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span.span_id, "016x"))
    cid = context.correlation_id.get()
    if cid:
        event_dict.setdefault("correlation_id", cid)
    rid = context.request_id.get()
    if rid:
        event_dict.setdefault("request_id", rid)
    return event_dict


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on stdout, for structlog and standard-library loggers alike."""
    out = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_context,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries (uvicorn, aiokafka, ...) log through the standard library: same redaction, JSON.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # These log statement parameters and payloads at DEBUG: patient data that no pattern
    # could recognise. They stay at WARNING whatever the service's level.
    for chatty in ("uvicorn.access", "aiokafka", "httpx", "httpcore", "aiosqlite", "pymongo"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
