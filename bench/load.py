"""Helpers of the HTTP load benchmarks: processes on free ports and Debian's `wrk` as load."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Seconds until `url` answered 200 (time to ready)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise AssertionError(f"process exited early with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready in {timeout}s")


def until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Polls `check` every 10 ms until it holds; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.01)


@contextmanager
def started(
    args: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextmanager
def paused(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """The process stopped (SIGSTOP) for the block, then continued: while the other side of a
    comparison is measured, this one takes no CPU time from it."""
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    cpu_ms_per_request: float = 0.0
    main_thread_cpu_ms_per_request: float = 0.0
    socket_errors: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


# The médecin the benchmarks log in as, and the patient they create first.
MEDECIN = {"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"}
PATIENT = {
    "birth_name": "BENCH",
    "birth_given_names": "Alice",
    "sex": "F",
    "birth_date": "1950-01-02",
    "birth_place": "75056",
}
WARM_UP_SECONDS = 3


def quiet(pid: int, *, busy: float = 0.05, timeout: float = 180.0) -> float:
    """Seconds until the process uses under `busy` of one core over a one-second window: its
    start-up background work (the conformance validator's compilation, fonts, cachets) is
    done. Measured meanwhile, a load would compete with it for the cores."""
    started_at = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started_at < timeout:
        time.sleep(1.0)  # the measurement window, not a wait for an event
        now = cpu_seconds(pid)
        if now - before < busy:
            return time.monotonic() - started_at
        before = now
    raise AssertionError(f"the process stayed busy for {timeout}s")


def warm_up(url: str, *, headers: dict[str, str] | None = None) -> None:
    """The same load for a few seconds, not measured, before a measurement (both sides of a
    comparison get one): caches filled, the collector's first passes over the objects the
    first requests make, connections and threads started."""
    wrk(url, headers=headers, seconds=WARM_UP_SECONDS)


def wrk(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    seconds: int = 10,
    threads: int = 2,
    server_pid: int | None = None,
    script: Path | None = None,
    script_args: Sequence[str] = (),
    timeout_seconds: int = 2,
    until: Callable[[], bool] | None = None,
) -> WrkResult:
    """`script` (a wrk Lua script) and `script_args` make the requests (bench/post.lua).
    With `until`, wrk is interrupted (SIGINT: it prints its figures over the time it ran) as
    soon as `until()` holds."""
    binary = shutil.which("wrk")
    if binary is None:
        pytest.skip("wrk (Debian package) is not installed: `make bench` installs it")
    args = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    args += [f"--timeout={timeout_seconds}s"]
    if script is not None:
        args += ["-s", str(script)]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    main_before = cpu_seconds(server_pid, server_pid) if server_pid else 0.0
    tail = ["--", *script_args] if script_args else []
    process = subprocess.Popen([*args, url, *tail], stdout=subprocess.PIPE, text=True)
    if until is not None:
        while process.poll() is None and not until():
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
    out = process.communicate()[0]
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, args, out)
    cpu = cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    main = cpu_seconds(server_pid, server_pid) - main_before if server_pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    per_request = 1000 * cpu / total if total else 0.0
    main_per_request = 1000 * main / total if total else 0.0
    return WrkResult(
        rps,
        p50,
        p99,
        int(bad.group(1)) if bad else 0,
        total,
        per_request,
        main_per_request,
        sum(int(n) for n in failed.groups()) if failed else 0,
    )


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a process and all its threads, or of one thread (Linux)."""
    stat = Path(f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
