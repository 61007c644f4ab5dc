"""The platform's load table (issue #17 point 3), from one run on one machine: one embedded
platform process against bare FastAPI + aiosqlite baselines (bench/bare_app.py), the same load
generator on both sides (Debian's wrk, 16 connections; POSTs made by bench/post.lua), then the
event latencies, resident memory, time to ready and bytes added to the data directory.

Figures, not pass/fail timings: `make bench` prints this table first. The sizes are environment
settings (PLATFORM_BENCH_SECONDS, _SIGNATURES, _EVENTS, _DMP_DOCUMENTS) for a quicker look.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from load import (
    MEDECIN,
    PATIENT,
    WrkResult,
    free_port,
    quiet,
    started,
    until,
    wait_ready,
    warm_up,
    wrk,
)

from bsante.dmp_connector import pki

SECONDS = int(os.environ.get("PLATFORM_BENCH_SECONDS", "10"))
SIGNATURES = int(os.environ.get("PLATFORM_BENCH_SIGNATURES", "48"))
CREATIONS = int(os.environ.get("PLATFORM_BENCH_EVENTS", "200"))
DMP_DOCUMENTS = int(os.environ.get("PLATFORM_BENCH_DMP_DOCUMENTS", "30"))
CONNECTIONS = 16
POST = Path(__file__).with_name("post.lua")
BARE = Path(__file__).with_name("bare_app.py")

# The INSi demo patient the DMP simulator's demo set knows: its documents go to the DMP.
LEFEVRE = {
    "birth_name": "LEFEVRE",
    "birth_given_names": "ELODIE MARIE",
    "sex": "F",
    "birth_date": "1979-03-12",
    "birth_place": "51215",
}
CREATE_BODY = {**PATIENT, "birth_name": "__NAME__"}  # post.lua makes each name unique


def _form_body() -> dict[str, Any]:
    measured = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answers = {"pulse": 72, "systolic_bp": 130, "diastolic_bp": 80, "measured_at": measured}
    return {"form_id": "surveillance", "answers": answers, "complete": True}


# -- the platform's files, read from the bench ---------------------------------------------------


def _databases(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*.db") if p.is_file())


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _pending(data: Path) -> int:
    """Outbox rows not yet published, plus log entries a consumer group has not committed."""
    pending = 0
    for path in _databases(data):
        with closing(_read_only(path)) as conn:
            tables = _tables(conn)
            if "outbox" in tables:
                pending += conn.execute(
                    "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL"
                ).fetchone()[0]
            if {"log", "offsets"} <= tables:
                pending += conn.execute(
                    "SELECT COALESCE(SUM(behind), 0) FROM (SELECT o.consumer_group, "
                    "(SELECT COUNT(*) FROM log l WHERE l.topic = o.topic "
                    "AND l.offset > o.committed) AS behind FROM offsets o)"
                ).fetchone()[0]
    return int(pending)


def _settle(data: Path, timeout: float = 120.0) -> None:
    """Until every event written so far is published and consumed (polling the files)."""
    until(lambda: not _pending(data), "the event pipeline's drain", timeout)


def _checkpointed_bytes(data: Path) -> int:
    """Bytes of the data directory as `du` would count them once every SQLite file's WAL is
    checkpointed into it: each database's pages (its WAL's pages included, read through a
    read-only connection, so nothing is changed), plus every other file (blobs, keys); the
    -wal and -shm files themselves are not counted."""
    total = 0
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        if path.name.endswith(("-wal", "-shm")):
            continue
        if path.suffix == ".db":
            with closing(_read_only(path)) as conn:
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                total += pages * conn.execute("PRAGMA page_size").fetchone()[0]
        else:
            total += path.stat().st_size
    return total


def _outbox(
    path: Path, event_type: str, since: datetime
) -> list[tuple[str, datetime, dict[str, Any]]]:
    """(event id, outbox row time, payload) of one event type written since `since`."""
    with closing(_read_only(path)) as conn:
        rows = conn.execute("SELECT event_id, created_at, value FROM outbox").fetchall()
    found = []
    for event_id, created_at, value in rows:
        at = datetime.fromisoformat(created_at)
        envelope = json.loads(value)
        if at >= since and envelope["event_type"] == event_type:
            found.append((event_id, at, envelope["payload"]))
    return found


def _inbox(path: Path, event_ids: list[str]) -> dict[str, datetime]:
    """The first claim of each event by any consumer group of one service."""
    claimed: dict[str, datetime] = {}
    with closing(_read_only(path)) as conn:
        for event_id, handled_at in conn.execute("SELECT event_id, handled_at FROM inbox"):
            at = datetime.fromisoformat(handled_at)
            if event_id in claimed:
                claimed[event_id] = min(claimed[event_id], at)
            else:
                claimed[event_id] = at
    return {e: claimed[e] for e in event_ids if e in claimed}


# -- the platform process -------------------------------------------------------------------------


def _own_rss(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0  # a child that just exited
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(c) for c in task.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def rss_bytes(pid: int) -> int:
    """The process's resident size plus its children's (documents' conformance worker)."""
    own = _own_rss(pid)
    if own == 0:
        raise AssertionError(f"no VmRSS for {pid}")
    return own + sum(_own_rss(child) for child in _descendants(pid))


@contextmanager
def rss_peak(pid: int) -> Iterator[list[int]]:
    """The highest resident size seen (every 0.2 s) while the block runs."""
    peak = [rss_bytes(pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], rss_bytes(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(5)


def _login(client: httpx.Client) -> dict[str, str]:
    response = client.post("/api/identity/auth/token", json=MEDECIN)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _created(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/api/patient/patients", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _qualified(client: httpx.Client) -> str:
    pid = _created(client, LEFEVRE)
    url = f"/api/patient/patients/{pid}"
    assert client.post(f"{url}/insi").status_code == 200
    checked = client.post(f"{url}/identity-document", json={"document_type": "passeport"})
    assert checked.json()["identity_status"] == "qualifiee", checked.text
    return pid


def _final(client: httpx.Client, pid: str, template_id: str) -> tuple[str, str]:
    """A consultation report drafted and finalised: (document id, ETag to sign it at)."""
    drafted = client.post(
        f"/api/documents/patients/{pid}/documents", json={"template_id": template_id}
    )
    assert drafted.status_code == 201, drafted.text
    document_id = str(drafted.json()["id"])
    final = client.post(
        f"/api/documents/documents/{document_id}/finalize",
        headers={"If-Match": drafted.headers["ETag"]},
    )
    assert final.status_code == 200, final.text
    return document_id, final.headers["ETag"]


def _sign(client: httpx.Client, document_id: str, etag: str) -> dict[str, Any]:
    signed = client.post(
        f"/api/documents/documents/{document_id}/sign", json={}, headers={"If-Match": etag}
    )
    assert signed.status_code == 200, signed.text
    return dict(signed.json())


@dataclass
class Side:
    """The figures of one side (platform or bare app) for the four routes."""

    results: dict[str, WrkResult] = field(default_factory=dict)
    bytes_per_op: dict[str, float] = field(default_factory=dict)
    # The platform's: waits until its event pipeline drained (every audit, every event
    # consumed); that wait counts in its requests/s, so a consumer falling behind shows.
    drain: Any = None


# Phases whose events are the platform's own work (access audits, PatientCreated, form
# events); signing also feeds the DMP through an outside simulator, which is not counted.
DRAINED = frozenset({"read", "create", "form"})


def _load(
    side: Side,
    name: str,
    size: Any,
    run: Any,
) -> None:
    """One load phase: `run()` the load, then bytes added per completed request."""
    before = size()
    result: WrkResult = run()
    assert result.non_2xx == 0 and result.socket_errors == 0, (name, result)
    if side.drain is not None and name in DRAINED:
        ended = time.monotonic()
        side.drain()
        elapsed = result.requests / result.requests_per_second + time.monotonic() - ended
        result = replace(result, requests_per_second=result.requests / elapsed)
    side.results[name] = result
    side.bytes_per_op[name] = (size() - before) / result.requests


def _post(
    url: str, mode: str, path: str, file: Path, *, headers: dict[str, str], pid: int
) -> WrkResult:
    return wrk(
        url,
        headers=headers,
        seconds=SECONDS,
        server_pid=pid,
        script=POST,
        script_args=[mode, path, str(file)],
        timeout_seconds=30,
    )


def _sign_load(url: str, path: str, ids: Path, *, headers: dict[str, str], pid: int) -> WrkResult:
    # Each document once: one connection per wrk thread, each thread stops after its share
    # and says so with a file; wrk is interrupted once all have.
    done = ids.parent / f"done-{free_port()}"
    done.mkdir()
    return wrk(
        url,
        headers=headers,
        connections=CONNECTIONS,
        threads=CONNECTIONS,
        seconds=600,
        server_pid=pid,
        script=POST,
        script_args=["sign", path, str(ids), str(CONNECTIONS), str(done)],
        timeout_seconds=300,
        until=lambda: len(list(done.iterdir())) == CONNECTIONS,
    )


@dataclass
class Platform:
    ready_s: float = 0.0
    quiet_s: float = 0.0
    rss_idle: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    created_alone: list[float] = field(default_factory=list)
    created_loaded: list[float] = field(default_factory=list)
    dmp: list[float] = field(default_factory=list)


@contextmanager
def _bare_app(tmp: Path, pdf: bytes) -> Iterator[tuple[str, int, Path]]:
    """The baseline app, warm (its cachet made, pyHanko loaded): (base URL, pid, its folder)."""
    folder = tmp / "bare"
    folder.mkdir()
    report = tmp / "report.pdf"
    report.write_bytes(_first_revision(pdf))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [str(BARE), "--db", str(folder / "bare.db"), "--port", str(port)]
    args += ["--pdf", str(report), "--pki", str(tmp / "bare-pki")]
    with started(args) as proc:
        wait_ready(f"{base}/health/live", proc)
        assert httpx.post(f"{base}/documents/warm/sign", timeout=120).status_code == 200
        yield base, proc.pid, folder


def _measure(data: Path, tmp: Path, sim_url: str) -> tuple[Platform, Side, Side]:
    """The platform and the bare app both running, each load phase on the platform then at
    once on the bare app (the other side idle), so that both see the same machine."""
    env = {
        "DMP_CONNECTOR_DMP_REPOSITORY_URL": f"{sim_url}/repository",
        "DMP_CONNECTOR_DMP_REGISTRY_URL": f"{sim_url}/registry",
        "DMP_CONNECTOR_DMP_ADMIN_URL": f"{sim_url}/admin",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["-m", "bsante.platform", "--data", str(data), "--port", str(port), "--psc-port", "-1"]
    figures, ours, theirs = Platform(), Side(), Side()
    start = time.monotonic()
    with started(args, env=env) as proc, httpx.Client(base_url=base, timeout=300) as client:
        figures.ready_s = wait_ready(f"{base}/health/ready", proc)
        auth = _login(client)
        client.headers.update(auth)
        pid = _created(client, PATIENT)
        qualified = _qualified(client)
        templates = client.get("/api/documents/templates").json()
        template = next(t["id"] for t in templates if "consultation" in t["name"].lower())
        # Start-up work: the first signing waits for the conformance validator compiled in the
        # background; then until the process is idle.
        signed = _sign(client, *_final(client, pid, template))
        assert signed["dmp_requested"] is False
        pdf = client.get(f"/api/documents/documents/{signed['id']}/pdf")
        assert pdf.status_code == 200
        assert client.post(f"/api/forms/patients/{pid}/submissions", json=_form_body()).is_success
        _settle(data)
        quiet(proc.pid)
        figures.quiet_s = time.monotonic() - start
        figures.rss_idle = rss_bytes(proc.pid)

        def size() -> int:
            _settle(data)
            return _checkpointed_bytes(data)

        ours.drain = lambda: _settle(data)

        create, form, ids = tmp / "create.json", tmp / "form.json", tmp / "documents.txt"
        create.write_text(json.dumps(CREATE_BODY))
        form.write_text(json.dumps(_form_body()))
        with _bare_app(tmp, pdf.content) as (bare, bare_pid, folder):

            def bare_size() -> int:
                return _checkpointed_bytes(folder)

            with rss_peak(proc.pid) as peak:
                warm_up(f"{base}/api/patient/patients/{pid}", headers=auth)
                warm_up(f"{bare}/patients/p1")
                _load(
                    ours,
                    "read",
                    size,
                    lambda: wrk(
                        f"{base}/api/patient/patients/{pid}",
                        headers=auth,
                        seconds=SECONDS,
                        server_pid=proc.pid,
                    ),
                )
                _load(
                    theirs,
                    "read",
                    bare_size,
                    lambda: wrk(f"{bare}/patients/p1", seconds=SECONDS, server_pid=bare_pid),
                )
                create_from = datetime.now(UTC)
                _load(
                    ours,
                    "create",
                    size,
                    lambda: _post(
                        base, "create", "/api/patient/patients", create, headers=auth, pid=proc.pid
                    ),
                )
                create_to = datetime.now(UTC)
                _load(
                    theirs,
                    "create",
                    bare_size,
                    lambda: _post(bare, "create", "/patients", create, headers={}, pid=bare_pid),
                )
                _load(
                    ours,
                    "form",
                    size,
                    lambda: _post(
                        base,
                        "body",
                        f"/api/forms/patients/{pid}/submissions",
                        form,
                        headers=auth,
                        pid=proc.pid,
                    ),
                )
                _load(
                    theirs,
                    "form",
                    bare_size,
                    lambda: _post(
                        bare, "body", "/patients/p1/submissions", form, headers={}, pid=bare_pid
                    ),
                )
                documents = [_final(client, pid, template) for _ in range(SIGNATURES)]
                ids.write_text("".join(f"{d} {e}\n" for d, e in documents))
                _load(
                    ours,
                    "sign",
                    size,
                    lambda: _sign_load(
                        base,
                        "/api/documents/documents/{id}/sign",
                        ids,
                        headers=auth,
                        pid=proc.pid,
                    ),
                )
                figures.rss_end = rss_bytes(proc.pid)
                _load(
                    theirs,
                    "sign",
                    bare_size,
                    lambda: _sign_load(bare, "/documents/{id}/sign", ids, headers={}, pid=bare_pid),
                )
            figures.rss_peak = peak[0]
        assert ours.results["sign"].requests == theirs.results["sign"].requests == SIGNATURES

        # PatientCreated committed -> claimed by the SLA monitor's consumer, one at a time.
        alone_from = datetime.now(UTC)
        for n in range(CREATIONS):
            _created(client, {**PATIENT, "birth_name": f"SEULE{_letters(n)}"})
        _settle(data)
        figures.created_alone = _latencies(data, "PatientCreated", alone_from, None)
        figures.created_loaded = _latencies(data, "PatientCreated", create_from, create_to)
        assert len(figures.created_alone) == CREATIONS

        # DocumentSigned committed -> the DMP's acknowledgement recorded by the connector
        # (DmpDocumentSubmitted), one document at a time, the simulator in its own process.
        dmp_from = datetime.now(UTC)
        for _ in range(DMP_DOCUMENTS):
            document_id, etag = _final(client, qualified, template)
            assert _sign(client, document_id, etag)["dmp_requested"] is True
            _until_submitted(client, document_id)
        figures.dmp = _dmp_latencies(data, dmp_from)
        assert len(figures.dmp) == DMP_DOCUMENTS
    return figures, ours, theirs


def _letters(n: int) -> str:
    out = ""
    while True:
        out = chr(65 + n % 26) + out
        n //= 26
        if n == 0:
            return out


def _until_submitted(client: httpx.Client, document_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/dmp-connector/documents/{document_id}/dmp")
        if state.status_code == 200 and state.json()["state"] in ("submitted", "failed"):
            assert state.json()["state"] == "submitted", state.text
            return
        time.sleep(0.02)
    raise AssertionError(f"document {document_id} not submitted to the DMP in {timeout}s")


def _latencies(data: Path, event_type: str, since: datetime, until: datetime | None) -> list[float]:
    events = [
        (e, at)
        for e, at, _ in _outbox(data / "patient.db", event_type, since)
        if until is None or at <= until
    ]
    claimed = _inbox(data / "sla-monitor.db", [e for e, _ in events])
    assert len(claimed) == len(events), "every PatientCreated reached the SLA monitor"
    return [(claimed[e] - at).total_seconds() for e, at in events]


def _dmp_latencies(data: Path, since: datetime) -> list[float]:
    signed = {
        p["document_id"]: at for _, at, p in _outbox(data / "documents.db", "DocumentSigned", since)
    }
    acknowledged = {
        p["document_id"]: at
        for _, at, p in _outbox(data / "dmp-connector.db", "DmpDocumentSubmitted", since)
    }
    return [(acknowledged[d] - at).total_seconds() for d, at in signed.items() if d in acknowledged]


def _first_revision(pdf: bytes) -> bytes:
    """The PDF as rendered, before the seal the platform appended as an incremental update."""
    end = pdf.index(b"%%EOF") + len(b"%%EOF")
    for eol in (b"\r", b"\n"):
        if pdf[end : end + 1] == eol:
            end += 1
    return pdf[:end]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms   p99 {_p(values, 0.99) * 1000:7.1f} ms"
        f"   ({len(values)} events)"
    )


def _row(name: str, values: list[float]) -> str:
    return f"    {name:<58}{_ms(values)}"


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


ROUTES = {
    "read": "patient read",
    "create": "patient create",
    "form": "form submission",
    "sign": "document signing",
}
LEGEND = """\
  Platform: `python -m bsante.platform` (every service and the gateway in one process, SQLite
  WAL + synchronous=FULL, embedded log), fresh data directory, through the gateway with a
  médecin's token. Baselines (bench/bare_app.py, same SQLite settings), running beside it on
  the same machine: each phase runs on the platform, then at once on the bare app (the other
  side idle), so that both meet the same background load:
    patient read      platform GET /api/patient/patients/{{id}} (with its access audit) |
                      bare: read one row, insert one audit row
    patient create    platform POST /api/patient/patients, a unique birth name each request
                      (no duplicate suspected) | bare: pydantic body, one patient row and one
                      outbox-like row in one transaction
    form submission   platform POST /api/forms/patients/{{id}}/submissions, a completed
                      surveillance form | bare: the same body validated by a pydantic model,
                      one row
    document signing  platform POST /api/documents/documents/{{id}}/sign of a final consultation
                      report (renders the PDF/A, PAdES seal, CDA N1 built and checked against
                      the CI-SIS schematrons, XAdES seal, three blobs, DocumentSigned) | bare:
                      PAdES seal of the platform's rendered PDF bytes by the documents signing
                      module (pyHanko, RSA 2048 demo cachet, as the platform's cachet) in a
                      worker thread, one row holding the sealed bytes; no rendering, no CDA
  Load: wrk, 16 connections; read, create and form for {seconds} s each (bench/post.lua makes
  the POSTs for both sides); signing: the same {signatures} documents on both sides, each once
  (16 wrk threads of one connection). Ratio = platform / bare requests per second; the
  platform's requests/s for read, create and form run until its event pipeline drained after
  wrk stopped (every access audit and event consumed), so a consumer falling behind lowers
  them (signing's also feed the DMP simulator, outside the platform: not waited for). CPU
  ms/req: the server process's CPU time (all its threads) during the load over the requests
  completed, less sensitive than requests/s to what else the machine runs.
  Bytes added per operation: the data directory (SQLite files, blobs, event log) before and
  after each phase, the platform's once its pipeline drained (no unpublished outbox row, every
  consumer group at the log's end), divided by the requests wrk completed; an SQLite file
  counts as it would after a full WAL checkpoint (its pages, those still in the WAL included,
  through a read-only connection; the -wal and -shm files are not counted).
  Event latency: the outbox row's time (written in the committing transaction) to the
  consumer's inbox claim (sla-monitor) or to the connector's DmpDocumentSubmitted outbox row
  (after the simulator's acknowledgement), read from the SQLite files; the DMP simulator runs
  as its own process. Start-up work done: the first signing returned (it waits for the
  conformance validator compiled in the background) and the process then used < 5 % of a core
  over a second."""


@pytest.mark.timeout(1200)
def test_platform_against_bare_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The platform's own demo PKI, made first in its data directory so that the simulator
    # (its own process) trusts the CA of the connector's VIHF signatures.
    data = tmp_path / "var"
    trust = pki.ensure(data / "dmp-pki").ca_cert
    sim_port = free_port()
    sim_args = ["-m", "bsante.dmp_connector.simulator", "--port", str(sim_port)]
    sim_args += ["--trust-store", str(trust)]
    with started(sim_args) as sim:
        sim_url = f"http://127.0.0.1:{sim_port}"
        wait_ready(f"{sim_url}/health", sim)
        platform, ours, theirs = _measure(data, tmp_path, sim_url)
    rows = []
    for key, title in ROUTES.items():
        mine, bare = ours.results[key], theirs.results[key]
        rows.append(
            f"  {title:<18}{mine.requests_per_second:9.1f}{bare.requests_per_second:9.1f}"
            f"{mine.requests_per_second / bare.requests_per_second:7.2f}"
            f"{mine.p99_ms:9.0f}{bare.p99_ms:7.0f}"
            f"{mine.cpu_ms_per_request:9.2f}{bare.cpu_ms_per_request:7.2f}"
            f"{ours.bytes_per_op[key]:10.0f}{theirs.bytes_per_op[key]:7.0f}"
        )
    lines = [
        "",
        "Platform against bare FastAPI + aiosqlite, one run (issue #17 point 3)",
        "                       requests/s          p99 (ms)     CPU ms/req     bytes/op",
        "  route             platform    bare  ratio platform  bare platform  bare platform  bare",
        *rows,
        "",
        "  event latency",
        _row("PatientCreated -> consumed (sla-monitor), one at a time", platform.created_alone),
        _row("PatientCreated -> consumed (sla-monitor), create load", platform.created_loaded),
        _row("DocumentSigned -> DMP acknowledgement, one at a time", platform.dmp),
        "",
        "  platform process",
        f"    time to ready (start -> /health/ready 200)   {platform.ready_s:6.1f} s",
        f"    start-up work done (from start)               {platform.quiet_s:6.1f} s",
        f"    resident memory idle (after start-up work)    {_mib(platform.rss_idle)}"
        "   (with its child processes: the CI-SIS check's worker)",
        f"    resident memory under load (peak)             {_mib(platform.rss_peak)}",
        f"    resident memory at the end of the load        {_mib(platform.rss_end)}",
        "",
        LEGEND.format(seconds=SECONDS, signatures=SIGNATURES),
    ]
    with capsys.disabled():
        print("\n".join(lines))
