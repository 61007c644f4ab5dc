"""Helpers of identity's tests: a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Identity's clock, moved by the test: starts at the real time, advances on request."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
