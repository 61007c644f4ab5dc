"""A fake external system over real HTTP on loopback: it applies each idempotency key once.

`POST /apply` with an `Idempotency-Key` header: the first request of a key applies it (201,
`duplicate: false`); a later one answers the same id with `duplicate: true` (200). Every key
received is recorded, in order. `hold_next()` makes the next request wait before applying, so a
test can kill the caller during the call, then `abandon()` the held request (not applied, as a
remote whose client vanished mid-request).
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class FakeRemote:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.applied: dict[str, str] = {}
        self.duplicates = 0
        self.arrived = threading.Event()
        self._hold = False
        self._release = threading.Event()
        self._apply_held = True
        self._lock = threading.Lock()
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                key = self.headers.get("Idempotency-Key", "")
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with remote._lock:
                    remote.received.append(key)
                    held, remote._hold = remote._hold, False
                if held:
                    remote.arrived.set()
                    remote._release.wait(60)
                    if not remote._apply_held:
                        return  # the caller is gone; nothing was applied
                status, body = remote._apply(key)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the caller died before reading the answer

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _apply(self, key: str) -> tuple[int, dict[str, object]]:
        with self._lock:
            if key in self.applied:
                self.duplicates += 1
                return 200, {"id": self.applied[key], "duplicate": True}
            self.applied[key] = uuid.uuid4().hex
            return 201, {"id": self.applied[key], "duplicate": False}

    def hold_next(self) -> None:
        self._hold = True

    def abandon(self) -> None:
        self._apply_held = False
        self._release.set()

    def __enter__(self) -> FakeRemote:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
