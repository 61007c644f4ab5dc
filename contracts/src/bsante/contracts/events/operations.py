"""Operational events (topic bsante.operations.v1), raised by any service's chassis."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event

JobFailureReason = Literal[
    "attempts_exhausted", "max_age_exceeded", "permanent_error", "invalid_payload", "worker_lost"
]


@event(topics.OPERATIONS)
class JobFailed(Payload):
    """A durable job (an external call) gave up: ops must look at it, the SLA monitor counts it.

    The error is the first line of the last failure, bounded; it names no personal data.
    """

    service: str
    job_id: str
    kind: str
    attempts: int = Field(ge=0)
    reason: JobFailureReason
    error_type: str = Field(max_length=100)
    error_message: str = Field(max_length=300)
    created_at: datetime
    failed_at: datetime
