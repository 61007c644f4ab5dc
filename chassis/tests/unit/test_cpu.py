"""run_cpu: the call runs on the CPU pool, off the event loop thread, with the caller's context."""

from __future__ import annotations

import threading

import pytest

from bsante.chassis import context
from bsante.chassis.cpu import run_cpu


def where(label: str, *, twice: bool = False) -> tuple[str, str, str | None]:
    return (label * (2 if twice else 1), threading.current_thread().name, context.request_id.get())


async def test_the_call_runs_off_the_loop_thread_with_the_callers_context() -> None:
    token = context.request_id.set("req-42")
    try:
        label, thread, request_id = await run_cpu(where, "ab", twice=True)
    finally:
        context.request_id.reset(token)
    assert label == "abab"
    assert thread != threading.current_thread().name and thread.startswith("bsante-cpu")
    assert request_id == "req-42", "logs inside the call keep the request id"


async def test_an_error_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await run_cpu(fail)
