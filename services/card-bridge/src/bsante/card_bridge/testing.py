"""A private pcscd with two virtual slots that no other machine can reach, for tests and bench.

vpcd (Debian's vsmartcard-vpcd) listens on every interface of its network namespace, so pcscd
runs under ``unshare --net --mount``: a network namespace with loopback only (vpcd's ports
35963 and 35964 exist nowhere else, and parallel runs do not collide), and /run/pcscd bound to
a private directory (pcscd 1.9 always puts its socket there; clients find this one through
PCSCLITE_CSOCK_NAME). The emulators reach vpcd from a thread that joins that namespace.
Creating namespaces needs root: without it, :func:`unavailable_reason` says so.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bsante.card_bridge.emulators.vpcd import VpcdSlot

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
READER_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


def unavailable_reason() -> str | None:
    """Why a private pcscd cannot run here (None when it can)."""
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (make debian-packages installs pcscd and vsmartcard-vpcd)"
    if not VPCD_DRIVER.exists():
        return "the vpcd driver is not installed (Debian package vsmartcard-vpcd)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare and ip (util-linux, iproute2) are needed to keep vpcd on loopback"
    if os.geteuid() != 0:
        return "a private pcscd needs root (network and mount namespaces keep vpcd on loopback)"
    try:
        import smartcard.scard  # noqa: F401
    except ImportError as error:
        return f"pyscard is not importable: {error}"
    return None


def wait_until(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    """Poll ``condition`` until it is truthy (the tests' eventually())."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def connector_in_namespace(pid: int, port: int) -> Callable[[], socket.socket]:
    """A socket factory connecting to 127.0.0.1:port inside the network namespace of ``pid``."""

    def connect() -> socket.socket:
        result: dict[str, socket.socket | BaseException] = {}

        def in_namespace() -> None:
            # setns changes the namespace of the calling thread only: a throw-away thread
            # makes the socket, which stays in that namespace.
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns into pcscd's network namespace")
                finally:
                    os.close(fd)
                result["socket"] = socket.create_connection(("127.0.0.1", port), timeout=10)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                result["error"] = error

        thread = threading.Thread(target=in_namespace)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        made = result["socket"]
        assert isinstance(made, socket.socket)
        return made

    return connect


def _die_with_parent() -> None:
    # A test run killed outright must not leave its pcscd behind.
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class VirtualReaders:
    """pcscd and the two slots (``slots[0]`` is "Virtual PCD 00 00", ``slots[1]`` 00 01)."""

    directory: Path
    slots: list[VpcdSlot] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "run" / "pcscd.comm"

    def start(self) -> VirtualReaders:
        conf = self.directory / "reader.conf.d"
        run = self.directory / "run"
        conf.mkdir(parents=True, exist_ok=True)
        run.mkdir(parents=True, exist_ok=True)
        Path("/run/pcscd").mkdir(parents=True, exist_ok=True)  # the bind mount's target
        (conf / "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            "DEVICENAME   /dev/null:0x8C7B\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            "CHANNELID    0x8C7B\n"
        )
        script = (
            'ip link set lo up && mount --bind "$1" /run/pcscd && '
            'exec pcscd --foreground --config "$2"'
        )
        os.environ[SOCKET_ENV] = str(self.socket_path)
        self.process = subprocess.Popen(
            [
                "unshare", "--net", "--mount", "--propagation", "private",
                "sh", "-c", script, "pcscd", str(run), str(conf),
            ],
            stdout=(self.directory / "pcscd.log").open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        from bsante.card_bridge.pcsc import Context

        def both_readers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited: {self.log()[-2000:]}")
            if not self.socket_path.exists():
                return False
            try:
                context = Context()
            except Exception:  # noqa: BLE001 - not up yet
                return False
            try:
                return len(context.readers()) >= 2
            finally:
                context.close()

        wait_until(both_readers, what="pcscd to list the two virtual readers")
        pid = self.process.pid
        self.slots = [VpcdSlot(connector_in_namespace(pid, p)) for p in (35963, 35964)]
        return self

    def log(self) -> str:
        path = self.directory / "pcscd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for slot in self.slots:
            slot.remove()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
