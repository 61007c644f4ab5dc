"""SIGTERM drains a service run alone, as Kubernetes stops a pod: readiness fails first, then
the server stops accepting, finishes the request in flight, stops the service, exits 0."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

APP = Path(__file__).with_name("drain_app.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return None


@pytest.mark.timeout(120)
def test_sigterm_drains_then_finishes_the_request_in_flight_and_exits_0(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, str(APP), str(port), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(APP.parent)},
    )
    try:
        eventually(lambda: status(f"{base}/health/ready") == 200, "the service to be ready")
        with httpx.Client(timeout=60) as client:
            # A request in flight across the whole shutdown (a thread: the test drives time).
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                slow = pool.submit(client.get, f"{base}/slow")
                eventually(lambda: (tmp_path / "entered").exists(), "the slow request to start")

                process.send_signal(signal.SIGTERM)
                eventually(lambda: status(f"{base}/health/ready") == 503, "readiness to fail")
                ready = httpx.get(f"{base}/health/ready", timeout=5)
                assert ready.json()["errors"] == [
                    {"field": "draining", "message": "SIGTERM received"}
                ]
                # Still serving while the load balancer takes the pod out.
                assert status(f"{base}/health/live") == 200
                assert process.poll() is None

                # The end of the drain period (a second SIGTERM ends it early): no new connections.
                process.send_signal(signal.SIGTERM)
                eventually(lambda: status(f"{base}/health/live") is None, "the listener to close")
                assert process.poll() is None, "exited with a request still in flight"
                assert not (tmp_path / "stopped").exists()

                (tmp_path / "release").touch()
                response = slow.result(timeout=60)
        assert response.status_code == 200
        assert response.json() == {"status": "finished"}
        assert process.wait(timeout=60) == 0
        assert (tmp_path / "stopped").exists(), "the service's stop hooks did not run"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
