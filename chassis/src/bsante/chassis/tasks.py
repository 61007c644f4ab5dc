"""Supervised background tasks of a service: periodic and long-running, restarted with backoff.

A service declares its tasks (`Periodic`, `LongRunning`); its supervisor starts them after the
store and the bus, cancels and awaits them before those stop, restarts one that crashed after an
exponential backoff (capped), counts its failures, and reports it to readiness once it has failed
`unhealthy_after` times in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

TASK_FAILURES = Counter(
    "bsante_task_failures_total", "Crashes of supervised background tasks", ["service", "task"]
)

TaskFunction = Callable[[], Awaitable[object]]


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class Backoff:
    """Delay before restarting a task after its n-th consecutive failure."""

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * self.multiplier ** max(0, failures - 1)))


@dataclass(frozen=True)
class Periodic:
    """`fn` runs every `every` (first run at start); a run that raises is retried with backoff."""

    name: str
    fn: TaskFunction
    every: float | timedelta
    backoff: Backoff = Backoff()
    unhealthy_after: int = 3


@dataclass(frozen=True)
class LongRunning:
    """`fn` runs until cancelled; if it raises (or returns) it is started again after a backoff.

    Its failures count as consecutive until a run has stayed up for `healthy_after` seconds.
    """

    name: str
    fn: TaskFunction
    backoff: Backoff = Backoff()
    unhealthy_after: int = 3
    healthy_after: float | timedelta = 60.0


SupervisedTask = Periodic | LongRunning


@dataclass
class TaskStatus:
    name: str
    consecutive_failures: int = 0
    total_failures: int = 0
    last_error: str | None = None
    runs: int = 0

    def healthy(self, unhealthy_after: int) -> bool:
        return self.consecutive_failures < unhealthy_after


class Supervisor:
    """Runs a service's tasks; `start` once the store and bus are up, `stop` before they close."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._specs: list[SupervisedTask] = []
        self._status: dict[str, TaskStatus] = {}
        self._running: list[asyncio.Task[None]] = []

    def add(self, task: SupervisedTask) -> None:
        if task.name in self._status:
            raise ValueError(f"{self.service} already has a task named {task.name!r}")
        if self._running:
            raise RuntimeError("declare tasks before the service starts")
        self._specs.append(task)
        self._status[task.name] = TaskStatus(task.name)

    @property
    def tasks(self) -> list[SupervisedTask]:
        return list(self._specs)

    def status(self, name: str) -> TaskStatus:
        return self._status[name]

    def failing(self) -> list[TaskStatus]:
        """The tasks that failed `unhealthy_after` times in a row (readiness reports them)."""
        return [
            self._status[spec.name]
            for spec in self._specs
            if not self._status[spec.name].healthy(spec.unhealthy_after)
        ]

    def start(self) -> None:
        for spec in self._specs:
            runner = self._periodic(spec) if isinstance(spec, Periodic) else self._long(spec)
            self._running.append(asyncio.create_task(runner, name=f"{self.service}:{spec.name}"))

    async def stop(self) -> None:
        running, self._running = self._running, []
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- loops --------------------------------------------------------------------------------

    def _failed(self, spec: SupervisedTask, error: BaseException | None) -> float:
        status = self._status[spec.name]
        status.consecutive_failures += 1
        error_type = type(error).__name__ if error is not None else "returned"
        if error is not None:
            status.total_failures += 1
            status.last_error = error_type
            TASK_FAILURES.labels(self.service, spec.name).inc()
        delay = spec.backoff.delay(status.consecutive_failures)
        # The error type only: an exception's message may carry personal data.
        log.warning(
            "task_failed",
            service=self.service,
            task=spec.name,
            error_type=error_type,
            consecutive_failures=status.consecutive_failures,
            retry_in_seconds=delay,
        )
        return delay

    def _recovered(self, spec: SupervisedTask) -> None:
        status = self._status[spec.name]
        if status.consecutive_failures:
            log.info("task_recovered", service=self.service, task=spec.name)
        status.consecutive_failures = 0

    async def _periodic(self, spec: Periodic) -> None:
        every = _seconds(spec.every)
        while True:
            self._status[spec.name].runs += 1
            try:
                await spec.fn()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await asyncio.sleep(self._failed(spec, error))
                continue
            self._recovered(spec)
            await asyncio.sleep(every)

    async def _long(self, spec: LongRunning) -> None:
        healthy_after = _seconds(spec.healthy_after)
        while True:
            self._status[spec.name].runs += 1
            run = asyncio.ensure_future(spec.fn())
            try:
                done, _ = await asyncio.wait({run}, timeout=healthy_after)
                if not done:
                    self._recovered(spec)
                    await run
                else:
                    run.result()
            except asyncio.CancelledError:
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run
                raise
            except Exception as error:
                await asyncio.sleep(self._failed(spec, error))
                continue
            # A long-running task is not meant to return: start it again, after a backoff so a
            # function that returns at once does not spin.
            await asyncio.sleep(self._failed(spec, None))


# -- process exit -----------------------------------------------------------------------------

_exit_hooks: list[Callable[[], None]] = []


def at_process_exit(hook: Callable[[], None]) -> None:
    """`hook()` once the process's server and services have stopped (`run_process_exit_hooks`),
    before the interpreter joins its threads: for helpers shared by the services of a process
    (a worker process) that the interpreter's exit would otherwise wait for."""
    _exit_hooks.append(hook)


def run_process_exit_hooks() -> None:
    """The hooks, last registered first; one that fails does not keep the others from running."""
    while _exit_hooks:
        hook = _exit_hooks.pop()
        try:
            hook()
        except Exception as error:
            log.warning("process_exit_hook_failed", error_type=type(error).__name__)


def freeze_startup_heap() -> None:
    """Once a process has started its services: what start-up made (modules, schemas, route
    tables, compiled validators: hundreds of thousands of objects that live as long as the
    process) is moved out of the garbage collector's reach (`gc.freeze`). A full collection
    then looks at what requests made since, and no longer pauses the event loop for a tenth of
    a second or more, every few seconds under load, to walk the start-up objects again."""
    gc.collect()
    gc.freeze()
