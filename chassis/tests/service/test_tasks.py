"""Supervised background tasks: restarted with backoff, reported by readiness, stopped promptly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from bsante.chassis.service import PURGE_TASK, RELAY_TASK, Check, Service
from bsante.chassis.settings import ServiceSettings
from bsante.chassis.tasks import Backoff, LongRunning, Periodic, SupervisedTask

FAST = Backoff(initial=0.01, multiplier=2.0, maximum=0.04)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = check()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def failures(service: str, task: str) -> float:
    value = REGISTRY.get_sample_value(
        "bsante_task_failures_total", {"service": service, "task": task}
    )
    return value or 0.0


def bare(name: str, tasks: list[SupervisedTask], **checks: Check) -> Service:
    """A service with only an HTTP app and its tasks (no store, bus or token verification)."""
    settings = ServiceSettings(service_name=name)
    return Service(settings, store=False, bus=False, jwks=False, tasks=tasks, checks=checks)


async def test_a_crashing_task_restarts_with_backoff_and_readiness_follows_it() -> None:
    broken = True
    runs = 0

    async def probe() -> None:
        nonlocal runs
        runs += 1
        if broken:
            raise ConnectionError("remote down")

    svc = bare("probing", tasks=[Periodic("probe", probe, every=3600, backoff=FAST)])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://s")
    with capture_logs() as logs:
        await svc.start()
        try:
            await eventually(lambda: runs >= 4)
            response = await client.get("/health/ready")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert "task:probe failed" in problem["detail"]
            assert problem["errors"][0]["field"] == "task:probe"
            assert "ConnectionError" in problem["errors"][0]["message"]
            assert failures("probing", "probe") >= 3

            broken = False
            await eventually(lambda: svc.supervisor.status("probe").consecutive_failures == 0)
            response = await client.get("/health/ready")
            assert response.status_code == 200, response.text
            assert response.json()["checks"] == {"task:probe": True}
        finally:
            await svc.stop()
    delays = [e["retry_in_seconds"] for e in logs if e["event"] == "task_failed"]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.04], "exponential, then capped"
    assert not any("remote down" in str(e) for e in logs), "error messages stay out of logs"


async def test_stop_during_a_backoff_exits_at_once() -> None:
    runs = 0

    async def always_fails() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("broken")

    slow = Backoff(initial=3600, maximum=3600)
    svc = bare("backing-off", tasks=[Periodic("broken", always_fails, every=1, backoff=slow)])
    await svc.start()
    await eventually(lambda: svc.supervisor.status("broken").total_failures == 1)
    # An hour of backoff is pending: stop must cancel it, not wait for it.
    await asyncio.wait_for(svc.stop(), timeout=10)
    assert runs == 1


async def test_a_long_running_task_is_restarted_after_a_crash_and_cancelled_on_stop() -> None:
    starts = 0
    cancelled = asyncio.Event()

    async def worker() -> None:
        nonlocal starts
        starts += 1
        if starts <= 2:
            raise ValueError("bad start")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = LongRunning("worker", worker, backoff=FAST, unhealthy_after=2, healthy_after=0.01)
    svc = bare("long-running", tasks=[task])
    await svc.start()
    await eventually(lambda: starts == 3)
    await eventually(lambda: svc.supervisor.status("worker").consecutive_failures == 0)
    assert (await svc.readiness())["task:worker"] is None
    assert svc.supervisor.status("worker").total_failures == 2
    await svc.stop()
    assert cancelled.is_set()


async def test_tasks_run_between_the_store_opening_and_closing(tmp_path: Path) -> None:
    """Started after the store and bus, cancelled and awaited before they stop."""
    seen: list[str] = []

    async def bookkeeper() -> None:
        await svc.store.count("things")
        seen.append("started with the store open")
        try:
            await asyncio.Event().wait()
        finally:
            # Still open while the task winds down.
            async with svc.store.transaction() as tx:
                await tx.insert("things", "last-words", {"ok": True})
            seen.append("stopped with the store open")

    settings = ServiceSettings(
        service_name="bookkeeping",
        store_url=f"sqlite:///{tmp_path / 'bookkeeping.db'}",
        bus_url=f"embedded://{tmp_path}",
    )
    svc = Service(settings, http=False, jwks=False, tasks=[LongRunning("books", bookkeeper)])
    assert [t.name for t in svc.supervisor.tasks] == [RELAY_TASK, PURGE_TASK, "books"]
    await svc.start()
    await eventually(lambda: bool(seen))
    await svc.stop()
    assert seen == ["started with the store open", "stopped with the store open"]
    reopened = Service(settings, http=False, jwks=False)
    await reopened.store.start()
    assert await reopened.store.get("things", "last-words") is not None
    await reopened.store.close()


async def test_a_part_of_the_service_can_add_its_own_readiness_check() -> None:
    reachable = False

    async def blobs() -> bool:
        return reachable

    svc = bare("with-blobs", [], blobs=blobs)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://s")
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["errors"] == [{"field": "blobs", "message": "unreachable"}]
    reachable = True
    assert (await client.get("/health/ready")).status_code == 200


def test_process_exit_hooks_run_once_last_registered_first_past_a_failing_one() -> None:
    from bsante.chassis.tasks import at_process_exit, run_process_exit_hooks

    ran: list[str] = []

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("boom")

    at_process_exit(lambda: ran.append("first"))
    at_process_exit(failing)
    at_process_exit(lambda: ran.append("last"))
    run_process_exit_hooks()
    assert ran == ["last", "failing", "first"]
    run_process_exit_hooks()
    assert ran == ["last", "failing", "first"], "each hook runs once"


def test_the_start_up_heap_is_frozen_out_of_the_collectors_reach() -> None:
    import gc

    from bsante.chassis.tasks import freeze_startup_heap

    before = gc.get_freeze_count()
    kept = [object() for _ in range(10)], {"a": [1, 2, 3]}
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > before
        # Frozen: in none of the generations the collector walks.
        assert not any(o is kept[0] or o is kept[1] for o in gc.get_objects())
    finally:
        gc.unfreeze()
