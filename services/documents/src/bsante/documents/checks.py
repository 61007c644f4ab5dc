"""The CI-SIS check run before signing: CDA_extended.xsd and the structurationMinimale
schematron of the ANS kit, when the kit is installed (`conformance.ConformanceValidator`).

The service runs it in a worker process (`IsolatedConformance`): Saxon holds the interpreter
lock while it compiles (tens of seconds at start) and while it validates, which in a thread
stalled every request of the service, and its heap stays out of the service's process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from bsante.chassis.tasks import at_process_exit
from bsante.documents.conformance import (
    CisisKit,
    ConformanceValidator,
    KitNotFound,
    shared_validator,
    signing_schematrons,
)


class KitConformance:
    """Failed checks as problem `errors`: XSD errors, then the failed schematron asserts."""

    def __init__(self, validator: ConformanceValidator) -> None:
        self.validator = validator

    @classmethod
    def located(cls, root: str = "") -> KitConformance | None:
        """The kit at `root` (else searched as `CisisKit.locate` does); None when absent."""
        try:
            kit = CisisKit(Path(root).resolve()) if root else CisisKit.locate()
        except KitNotFound:
            return None
        validator = shared_validator(kit)
        return cls(validator) if validator is not None else None

    @property
    def kit_root(self) -> str:
        return str(self.validator.kit.root)

    def warm_up(self) -> None:
        """Load the schema and compile the signing schematrons now (tens of seconds the first
        time in a process, then nothing), so that the first signature does not pay for them.
        Blocking: the service runs it in a worker thread at start."""
        kit = self.validator.kit
        _ = self.validator.schema
        for sch in signing_schematrons(kit, dlu=True):
            self.validator.prepare(sch)

    def check(self, cda: bytes, *, dlu: bool = False) -> list[dict[str, str]]:
        report = self.validator.validate(cda, signing_schematrons(self.validator.kit, dlu=dlu))
        errors = [{"field": "cda", "message": f"XSD: {error}"} for error in report.xsd_errors]
        errors.extend(
            {"field": "cda", "message": f"{failed.id or 'assert'}: {failed.text}"[:500],
             "location": failed.location[:300]}
            for failed in report.failed_asserts
            if failed.is_error
        )  # fmt: skip
        return errors


# -- the worker process -----------------------------------------------------------------------

_worker_check: KitConformance | None = None


def _exit_with(parent: int) -> None:
    """A worker whose service died (SIGKILL leaves no goodbye) exits instead of lingering."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_worker(kit_root: str, parent: int) -> None:
    global _worker_check
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _worker_check = KitConformance.located(kit_root)


def _worker() -> KitConformance:
    if _worker_check is None:
        raise RuntimeError("the CI-SIS kit could not be loaded in the conformance worker")
    return _worker_check


def _warm_up_in_worker() -> None:
    _worker().warm_up()


class ConformanceWorkerError(RuntimeError):
    """The check failed in the worker (lxml's errors do not cross processes: their logs do not
    pickle); the message is the original's."""


def _check_in_worker(cda: bytes, dlu: bool) -> list[dict[str, str]]:
    try:
        return _worker().check(cda, dlu=dlu)
    except Exception as exc:
        raise ConformanceWorkerError(f"{type(exc).__name__}: {exc}") from None


class ConformanceWorker:
    """A one-process pool running the check; replaced when its process dies."""

    def __init__(self, kit_root: str) -> None:
        self.kit_root = kit_root
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._terminated = False

    def _current(self, broken: ProcessPoolExecutor | None = None) -> ProcessPoolExecutor:
        with self._lock:
            if self._terminated:
                raise ConformanceWorkerError("the conformance worker was stopped")
            if self._pool is None or self._pool is broken:
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)
                # spawn: forking a process that runs threads (the event loop's helpers) is unsafe.
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.kit_root, os.getpid()),
                )
            return self._pool

    def call(self, fn: Any, *args: Any) -> Any:
        pool = self._current()
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            # The worker died (killed, out of memory): a new one, and the call once more.
            return self._current(broken=pool).submit(fn, *args).result()

    async def call_async(self, fn: Any, *args: Any) -> Any:
        """`call`, awaited on the loop: no thread waits for the worker meanwhile."""
        pool = self._current()
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool:
            return await asyncio.wrap_future(self._current(broken=pool).submit(fn, *args))

    def terminate(self) -> None:
        """Ends the worker at once, whatever it is doing, and returns once its process is gone:
        the process's exit then waits for no compilation in progress (nothing is lost: a
        check's result is awaited by its caller)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._terminated = True
        if pool is None:
            return
        # ProcessPoolExecutor has no public way to end its processes before Python 3.14.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)  # SIGTERM ends it at once, mid-compilation included
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


# One worker per kit for the whole process: every documents service of an embedded platform
# (or of a test session) shares its compiled schematrons, as `shared_validator` did in-process.
_workers: dict[str, ConformanceWorker] = {}
_workers_lock = threading.Lock()


def shared_worker(kit_root: str) -> ConformanceWorker:
    with _workers_lock:
        worker = _workers.get(kit_root)
        if worker is None:
            worker = _workers[kit_root] = ConformanceWorker(kit_root)
            at_process_exit(worker.terminate)
        return worker


class IsolatedConformance:
    """`KitConformance` run in a worker process: `check` blocks (call it in a thread), the
    warm-up is awaited."""

    def __init__(self, kit_root: str, worker: ConformanceWorker | None = None) -> None:
        self._kit_root = kit_root
        self.worker = worker or shared_worker(kit_root)

    @classmethod
    def located(cls, root: str = "") -> IsolatedConformance | None:
        try:
            kit = CisisKit(Path(root).resolve()) if root else CisisKit.locate()
        except KitNotFound:
            return None
        return cls(str(kit.root))

    @property
    def kit_root(self) -> str:
        return self._kit_root

    async def warm_up_async(self) -> None:
        """Compiles the schematrons in the worker, awaited (the service's warm-up task)."""
        await self.worker.call_async(_warm_up_in_worker)

    def check(self, cda: bytes, *, dlu: bool = False) -> list[dict[str, str]]:
        result: list[dict[str, str]] = self.worker.call(_check_in_worker, cda, dlu)
        return result
