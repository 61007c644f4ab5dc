"""Domain errors of the SLA contract core (no HTTP status here: the edge maps them)."""

from __future__ import annotations


class ContractError(Exception):
    """Base of the SLA contract's domain errors."""


class NaiveDatetime(ContractError, ValueError):
    """A time without a UTC offset was given where only aware datetimes make sense."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: an aware datetime (with a UTC offset) is required")
        self.field = field


class NoOpenTime(ContractError):
    """A calendar has no open time within the search horizon (configuration error)."""

    def __init__(self, calendar: str) -> None:
        super().__init__(f"calendar {calendar!r} has no open time")
        self.calendar = calendar


class InvalidTransition(ContractError):
    """The ticket's state does not allow this action (closing an unqualified ticket, ...)."""

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a ticket in state {state!r}")
        self.action = action
        self.state = state


class AlreadyDone(InvalidTransition):
    """A one-off step was asked a second time (resolving twice, intervening twice, ...)."""


class TimeOutOfOrder(ContractError, ValueError):
    """An event is dated before the ticket's previous event: history only moves forward."""

    def __init__(self, action: str, at: str, previous: str) -> None:
        super().__init__(f"{action} at {at} is before the previous event at {previous}")
        self.action = action
        self.at = at
        self.previous = previous


class ClockStopped(ContractError):
    """A stopped clock was asked to pause, resume or stop again."""
