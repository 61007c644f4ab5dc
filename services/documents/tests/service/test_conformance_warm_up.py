"""The conformance validator is warmed up at start in a supervised worker thread: readiness
does not wait for it, and a failed warm-up is retried."""

from __future__ import annotations

import threading
from pathlib import Path

from documents_kit import documents_alone  # type: ignore[import-not-found]
from kit import eventually  # type: ignore[import-not-found]

from bsante.documents.app import WARM_UP_TASK


class HeldWarmUp:
    """A check whose warm-up runs until the test releases it (the first run fails)."""

    def __init__(self, *, failures: int = 0) -> None:
        self.release = threading.Event()
        self.threads: list[int] = []
        self.failures = failures
        self.done = threading.Event()

    def warm_up(self) -> None:
        self.threads.append(threading.get_ident())
        if len(self.threads) <= self.failures:
            raise RuntimeError("the kit is being copied")
        if not self.release.wait(timeout=60):
            raise TimeoutError("the test never released the warm-up")
        self.done.set()

    def check(self, cda: bytes, *, dlu: bool = False) -> list[dict[str, str]]:
        return []


async def test_readiness_does_not_wait_for_the_warm_up_run_off_the_loop(tmp_path: Path) -> None:
    check = HeldWarmUp()
    try:
        async with documents_alone(tmp_path, conformance=check) as documents:

            async def started() -> bool:
                return bool(check.threads)

            await eventually(started)
            assert threading.get_ident() not in check.threads  # not the event loop's thread
            ready = await documents.client.get("/api/documents/health/ready")
            assert ready.status_code == 200, ready.text  # while the warm-up is still held
            assert not check.done.is_set()

            check.release.set()

            async def warmed() -> bool:
                return check.done.is_set()

            await eventually(warmed)
            status = documents.service.supervisor.status(WARM_UP_TASK)
            assert status.runs == 1 and status.consecutive_failures == 0
            headers = documents.headers()
            signed = await documents.signed(headers, documents.sources.add_patient())
            assert signed.json()["status"] == "signed"
    finally:
        check.release.set()


async def test_a_failed_warm_up_is_retried(tmp_path: Path) -> None:
    check = HeldWarmUp(failures=1)
    check.release.set()
    async with documents_alone(tmp_path, conformance=check) as documents:

        async def warmed() -> bool:
            return check.done.is_set()

        await eventually(warmed)
        status = documents.service.supervisor.status(WARM_UP_TASK)
        assert status.total_failures == 1 and len(check.threads) == 2
