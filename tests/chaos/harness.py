"""The crash campaign: the platform as one process per service on the embedded adapters, a
workload through the gateway, random SIGKILLs with restarts, and the exactly-once checks.

`run_campaign(root, kills=..., seed=...)` does it all and returns a `Campaign` report; the
short run is a pytest test (`tests/chaos/test_chaos.py`), the long one `make chaos`.

What the harness reads to decide (never to assert wall-clock time): each service's
`/health/ready`, the embedded log's `log` and `offsets` tables and each store's `outbox` table
(SQLite, opened read-only), identity's audit trail in its store file, the DMP simulator's
documents, and the MSSanté operator's mailboxes (in this process).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx

from bsante.chassis.jobs import JOBS
from bsante.contracts import manifest
from bsante.dmp_connector import pki
from bsante.mss_connector.simulator import CORRESPONDENT, Operator

STRUCTURE = "demo-ehpad"
MEDECIN = {"username": "medecin@tilleuls.demo", "password": "Medecin-Tilleuls-2026"}
ADMIN = {"username": "admin@tilleuls.demo", "password": "Tilleuls-Demo-2026"}
# The contractual goal the report compares each catch-up with (never asserted).
GOAL_SECONDS = 30.0
# A service that has not caught up after this long fails the campaign.
CATCH_UP_LIMIT = 120.0
DRAIN_LIMIT = 240.0
MIN_DOCUMENTS = 3
# Status codes of a service being killed or restarted behind the gateway: ask again.
TRANSIENT = {502, 503, 504}

# The INSi demo identities, which the DMP simulator knows with an open DMP: their documents
# feed the DMP. Two come from carte Vitale reads (as the card bridge posts them), two by hand.
DURAND_CARD: dict[str, Any] = {
    "workstation_id": "chaos-ws-1",
    "holder_nir": "1620188850453",
    "beneficiaries": [
        {
            "quality": "assure",
            "nir": "162018885045327",
            "birth_name": "DURAND",
            "given_name": "JEAN",
            "birth_date": "1962-01-15",
        },
        {
            "quality": "enfant",
            "birth_name": "DURAND",
            "given_name": "LEA",
            "birth_date": "2012-05-20",
        },
    ],
}
LEFEVRE_CARD: dict[str, Any] = {
    "workstation_id": "chaos-ws-2",
    "holder_nir": "2790351215189",
    "beneficiaries": [
        {
            "quality": "assure",
            "nir": "279035121518989",
            "birth_name": "LEFEVRE",
            "given_name": "ELODIE",
            "birth_date": "1979-03-12",
            "sex": "F",
        }
    ],
}
ECETINSI = {
    "birth_name": "ECETINSI",
    "birth_given_names": "PIERRE-ALAIN MURIEL FLORIANT",
    "sex": "M",
    "birth_date": "2009-07-14",
    "birth_place": "63220",
}
ALL_YES = {"S": True, "T": True, "C": True, "H": True}
AGGIR_GIR6: dict[str, Any] = {
    "COH": {"communication": "A", "comportement": ALL_YES},
    "ORI": {"temps": "A", "espace": "A"},
    "TOI": {"haut": "A", "bas": "A"},
    "HAB": {"haut": "A", "moyen": "A", "bas": "A"},
    "ALI": {"se_servir": "A", "manger": "A"},
    "ELI": {"urinaire": "A", "fecale": "A"},
    "TRA": ALL_YES,
    "DPI": "A",
    "DPE": "A",
    "COM": "A",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(condition: Callable[[], bool], what: str | Callable[[], str], timeout: float) -> None:
    """Until `condition()` holds; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {said}")
        time.sleep(0.1)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a WAL file another process writes (never blocks it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


# -- the processes --------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    group: str | None = None  # its consumer group on the embedded log
    store: Path | None = None  # its SQLite store
    ready_path: str = "/health/ready"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(30)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def ready(self) -> bool:
        if not self.alive():
            return False
        try:
            return httpx.get(f"{self.url}{self.ready_path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def waited_for(self, what: str) -> str:
        return f"{self.name} to {what}; its last lines:\n{self.tail()}"

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Cluster:
    """Every service of the manifest and the gateway, each `python -m <module>`, as the
    distributed topology runs them (compose), on SQLite stores, one embedded log and files;
    plus the DMP simulator (its own process) and the MSSanté operator (in this process)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.data.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest.load()
        self.processes: dict[str, Process] = {}
        self.operator = Operator(self.root / "mssante", with_imap=False)
        self.simulator: Process | None = None

    # The bus and the stores, read-only.
    @property
    def bus(self) -> Path:
        return self.data / "bus.db"

    def start(self) -> None:
        self.operator.prepare()
        self.operator._start()  # noqa: SLF001 - its SMTP thread; no event loop here
        demo_pki = pki.ensure(self.data / "dmp-pki")
        simulator_port = free_port()
        self.simulator = Process(
            "dmp-simulator",
            [
                "-m",
                "bsante.dmp_connector.simulator",
                "--port",
                str(simulator_port),
                "--trust-store",
                str(demo_pki.ca_cert),
            ],
            dict(os.environ),
            simulator_port,
            self.logs / "dmp-simulator.log",
        )
        self.simulator.start()
        self._plan(demo_pki, simulator_port)
        for process in self.processes.values():
            process.start()
        poll(self.simulator_up, "the DMP simulator", 120)
        for process in self.processes.values():
            poll(process.ready, functools.partial(process.waited_for, "be ready"), 180)

    def simulator_up(self) -> bool:
        assert self.simulator is not None
        try:
            httpx.get(f"{self.simulator.url}/patients/0/documents", timeout=2)
        except httpx.HTTPError:
            return False
        return True

    def _plan(self, demo_pki: pki.Pki, simulator_port: int) -> None:
        services = self.manifest.of_kind("service")
        ports = {
            entry.name: free_port() for entry in [*services, *self.manifest.of_kind("gateway")]
        }
        identity = f"http://127.0.0.1:{ports['identity']}"
        clients = [entry for entry in services if entry.calls]
        secrets_dir = self.root / "secrets"
        secrets_dir.mkdir(exist_ok=True)
        for entry in clients:
            secret = secrets_dir / f"{entry.name}.secret"
            secret.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
            secret.chmod(0o600)
        base = dict(os.environ)
        for entry in services:
            p = entry.env_prefix
            env = {
                **base,
                f"{p}STORE_URL": f"sqlite:///{self.data / (entry.name + '.db')}",
                f"{p}BUS_URL": f"embedded://{self.data}",
                f"{p}BLOB_URL": f"file://{self.data / 'blobs' / entry.name}",
                f"{p}JWKS_URL": f"{identity}/.well-known/jwks.json",
                f"{p}HOST": "127.0.0.1",
                f"{p}PORT": str(ports[entry.name]),
                f"{p}LOG_LEVEL": "WARNING",
                **{f"{p}{key}": value for key, value in entry.env.items()},
                **{
                    f"{p}{peer.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{ports[peer]}"
                    for peer in entry.calls
                },
            }
            if entry in clients:
                env[f"{p}SERVICE_TOKEN_URL"] = f"{identity}/oauth/token"
                env[f"{p}SERVICE_CLIENT_SECRET_FILE"] = str(secrets_dir / f"{entry.name}.secret")
            env.update(self._specific(entry.name, p, demo_pki, simulator_port, clients))
            self.processes[entry.name] = Process(
                entry.name,
                ["-m", entry.module],
                env,
                ports[entry.name],
                self.logs / f"{entry.name}.log",
                group=f"bsante.{entry.name}",
                store=self.data / f"{entry.name}.db",
            )
        gateway = self.manifest.of_kind("gateway")[0]
        p = gateway.env_prefix
        routes = {entry.name: f"http://127.0.0.1:{ports[entry.name]}" for entry in services}
        self.processes[gateway.name] = Process(
            gateway.name,
            ["-m", gateway.module],
            {
                **base,
                f"{p}SERVICES": json.dumps(routes),
                f"{p}BUS_URL": f"embedded://{self.data}",
                f"{p}JWKS_URL": f"{identity}/.well-known/jwks.json",
                f"{p}HOST": "127.0.0.1",
                f"{p}PORT": str(ports[gateway.name]),
                f"{p}LOG_LEVEL": "WARNING",
            },
            ports[gateway.name],
            self.logs / f"{gateway.name}.log",
            group="gateway-stream",
        )

    def _specific(
        self,
        name: str,
        p: str,
        demo_pki: pki.Pki,
        simulator_port: int,
        clients: list[manifest.ServiceEntry],
    ) -> dict[str, str]:
        secrets_dir = self.root / "secrets"
        if name == "identity":
            registry = {
                c.name: {
                    "scopes": list(c.scopes),
                    "secret_file": str(secrets_dir / f"{c.name}.secret"),
                }
                for c in clients
            }
            return {f"{p}SERVICE_CLIENTS": json.dumps(registry), f"{p}SEED_DEMO": "true"}
        if name == "sla-monitor":
            # Its probes address services by container name; the campaign watches them itself.
            return {f"{p}PROBES_ENABLED": "false"}
        if name == "documents":
            return {f"{p}SIGNING_DEMO_PKI_DIR": str(self.data / "demo-pki")}
        if name == "dmp-connector":
            dmp = f"http://127.0.0.1:{simulator_port}"
            return {
                f"{p}DMP_REPOSITORY_URL": f"{dmp}/repository",
                f"{p}DMP_REGISTRY_URL": f"{dmp}/registry",
                f"{p}DMP_ADMIN_URL": f"{dmp}/admin",
                f"{p}SIGNING_CERT_FILE": str(demo_pki.cert),
                f"{p}SIGNING_KEY_FILE": str(demo_pki.key),
                # A killed attempt runs again once its lease (this plus the worker's margin)
                # expired: keep the campaign's drain short.
                f"{p}JOB_TIMEOUT_SECONDS": "10",
            }
        if name == "mss-connector":
            address = self.operator.structures[STRUCTURE]
            secret = secrets_dir / "smtp.secret"
            secret.write_text(self.operator.passwords[address])
            secret.chmod(0o600)
            box = self.operator.mailbox(address).model_dump(mode="json")
            box.update({"password": "", "password_file": str(secret), "poll": False})
            return {
                f"{p}MAILBOXES": json.dumps({STRUCTURE: {"organisational": box}}),
                f"{p}SMTP_TIMEOUT_SECONDS": "5",
                f"{p}DOCUMENTS_TIMEOUT_SECONDS": "5",
            }
        return {}

    @property
    def gateway(self) -> str:
        return self.processes["gateway"].url

    def stop(self) -> None:
        for process in [*self.processes.values(), self.simulator]:
            if process is not None:
                process.kill()
        with contextlib.suppress(Exception):
            self.operator._stop()  # noqa: SLF001

    # -- what the log and the stores say ----------------------------------------------------

    def heads(self, process: Process) -> dict[str, int]:
        """The last offset of each topic `process`'s consumer group follows."""
        if process.group is None or not self.bus.exists():
            return {}
        with read_only(self.bus) as conn:
            topics = [
                str(row[0])
                for row in conn.execute(
                    "SELECT topic FROM offsets WHERE consumer_group = ?", (process.group,)
                )
            ]
            return {
                topic: int(
                    conn.execute(
                        "SELECT COALESCE(MAX(offset), 0) FROM log WHERE topic = ?", (topic,)
                    ).fetchone()[0]
                )
                for topic in topics
            }

    def committed(self, process: Process) -> dict[str, int]:
        with read_only(self.bus) as conn:
            return {
                str(topic): int(offset)
                for topic, offset in conn.execute(
                    "SELECT topic, committed FROM offsets WHERE consumer_group = ?",
                    (process.group,),
                )
            }

    def outbox_mark(self, process: Process) -> int:
        if process.store is None or not process.store.exists():
            return 0
        with read_only(process.store) as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])

    def outbox_unsent(self, process: Process, upto: int | None = None) -> int:
        if process.store is None:
            return 0
        sql = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"
        args: tuple[int, ...] = ()
        if upto is not None:
            sql += " AND seq <= ?"
            args = (upto,)
        with read_only(process.store) as conn:
            return int(conn.execute(sql, args).fetchone()[0])

    def outbox_parked(self, process: Process) -> int:
        if process.store is None:
            return 0
        with read_only(process.store) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM outbox WHERE parked_at IS NOT NULL").fetchone()[
                    0
                ]
            )

    def jobs(self, process: Process) -> Counter[str]:
        if process.store is None:
            return Counter()
        with read_only(process.store) as conn:
            rows = conn.execute(
                "SELECT json_extract(data, '$.state') FROM documents WHERE collection = ?", (JOBS,)
            ).fetchall()
        return Counter(str(row[0]) for row in rows)

    def caught_up(self, process: Process, heads: dict[str, int], outbox: int) -> bool:
        """Ready, its consumer group past the heads of the log seen at its restart, and what
        its outbox held then published."""
        if not process.ready():
            return False
        committed = self.committed(process) if process.group else {}
        if any(committed.get(topic, 0) < head for topic, head in heads.items()):
            return False
        return self.outbox_unsent(process, outbox) == 0

    def count(self, service: str, collection: str) -> int:
        with read_only(self.data / f"{service}.db") as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM documents WHERE collection = ?", (collection,)
            ).fetchone()
        return int(row[0])

    def audit(self) -> list[dict[str, Any]]:
        with read_only(self.data / "identity.db") as conn:
            rows = conn.execute(
                "SELECT data FROM documents WHERE collection = 'access_audit'"
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def dmp_documents(self, ins: str) -> list[dict[str, Any]]:
        assert self.simulator is not None
        r = httpx.get(f"{self.simulator.url}/patients/{ins}/documents", timeout=10)
        r.raise_for_status()
        documents: list[dict[str, Any]] = r.json()["documents"]
        return documents


# -- the workload -----------------------------------------------------------------------------


class DriverError(AssertionError):
    pass


@dataclass
class Ledger:
    """What the driver believes happened."""

    created: dict[str, str] = field(default_factory=dict)  # birth name -> how
    qualified: dict[str, str] = field(default_factory=dict)  # patient id -> INS
    reads: list[tuple[str, str]] = field(default_factory=list)  # (patient id, request id) acked
    forms: int = 0
    drafts: int = 0
    signed: dict[str, str] = field(default_factory=dict)  # document id -> patient id
    sends: list[str] = field(default_factory=list)  # document ids sent to the correspondent
    retries: int = 0
    longest_wait: tuple[float, str] = (0.0, "")  # the longest a request waited for its answer
    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Driver:
    """A professional's day through the gateway; a request that meets a dead service is asked
    again (same body; the platform, not the driver, must keep things exactly-once)."""

    def __init__(
        self,
        gateway: str,
        rng: random.Random,
        *,
        ledger: Ledger | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.base = gateway
        self.rng = rng
        self.client = httpx.Client(base_url=gateway, timeout=30)
        self.ledger = ledger or Ledger()
        self.headers: dict[str, str] = {}
        self.stop = stop or threading.Event()
        self.error: BaseException | None = None
        self.template = ""

    def close(self) -> None:
        self.client.close()

    # One request, asked again until a service answers it for real.
    def call(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201),
        accept: tuple[int, ...] = (),
        login: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        # Longer than a recovery: the services a request needs may be killed one after another.
        first = time.monotonic()
        deadline = first + DRAIN_LIMIT
        attempt = 0
        extra = dict(kwargs.pop("headers", None) or {})
        while True:
            attempt += 1
            request_id = uuid.uuid4().hex
            headers = {**(self.headers if login else {}), **extra, "X-Request-Id": request_id}
            try:
                response = self.client.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:
                response = None
            if response is not None:
                response.extensions["request_id"] = request_id
                response.extensions["attempt"] = attempt
                if response.status_code in ok or response.status_code in accept:
                    waited = time.monotonic() - first
                    with self.ledger.lock:
                        if waited > self.ledger.longest_wait[0]:
                            self.ledger.longest_wait = (waited, f"{method} {path.split('/')[2]}")
                    return response
                if response.status_code == 401 and login:
                    self.login()
                elif response.status_code >= 500 and response.status_code not in TRANSIENT:
                    self.ledger.server_errors.append(
                        f"{method} {path} -> {response.status_code}: {response.text[:200]}"
                    )
                elif response.status_code not in TRANSIENT:
                    raise DriverError(f"{method} {path} -> {response.status_code}: {response.text}")
            if time.monotonic() > deadline:
                raise DriverError(f"{method} {path}: no answer in {DRAIN_LIMIT:.0f}s")
            with self.ledger.lock:
                self.ledger.retries += 1
            time.sleep(0.2)  # a client's pause before asking again, not a synchronisation

    def login(self) -> None:
        r = self.call("POST", "/api/identity/auth/token", json=MEDECIN, login=False)
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def token(self, credentials: dict[str, str]) -> dict[str, str]:
        r = self.call("POST", "/api/identity/auth/token", json=credentials, login=False)
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    # -- the steps ----------------------------------------------------------------------------

    def qualify(self, patient_id: str) -> None:
        url = f"/api/patient/patients/{patient_id}"
        self.call("POST", f"{url}/insi")
        r = self.call("POST", f"{url}/identity-document", json={"document_type": "passeport"})
        body = r.json()
        if body["identity_status"] != "qualifiee":
            raise DriverError(f"not qualified: {body['identity_status']}")
        self.ledger.qualified[patient_id] = body["ins"]["matricule"]

    def from_card_read(self, card: dict[str, Any], beneficiary: int, sex: str | None) -> str:
        """As the card bridge does: post the read; then the professional picks a person."""
        accepted = self.call("POST", "/api/patient/patients/card-reads", json=card, ok=(202,))
        read = f"/api/patient/patients/card-reads/{accepted.json()['read_id']}"
        # The read reaches the patient service through the event log.
        poll(
            lambda: self.call("GET", read, accept=(404,)).status_code == 200,
            "the card read to be consumed",
            CATCH_UP_LIMIT,
        )
        body: dict[str, Any] = {"beneficiary": beneficiary}
        if sex:
            body["sex"] = sex
        picked = self.call("POST", f"{read}/select", json=body)
        patient: dict[str, Any] = picked.json()["patient"]
        self.ledger.created.setdefault(patient["traits"]["birth_given_names"], "vitale")
        return str(patient["id"])

    def setup(self) -> None:
        """The patients whose documents feed the DMP: two from card reads, one by the
        `from-vitale` route, one by hand; all qualified by INSi and an identity document."""
        self.login()
        ids = [
            self.from_card_read(DURAND_CARD, 0, None),
            self.from_card_read(DURAND_CARD, 1, "F"),
        ]
        r = self.call(
            "POST",
            "/api/patient/patients/from-vitale",
            json={"card": LEFEVRE_CARD, "beneficiary": 0},
        )
        self.ledger.created.setdefault("LEFEVRE", "vitale")
        ids.append(str(r.json()["patient"]["id"]))
        ids.append(self.create(ECETINSI))
        for patient_id in ids:
            self.qualify(patient_id)
        templates = self.call("GET", "/api/documents/templates").json()
        self.template = next(t["id"] for t in templates if "consultation" in t["name"].lower())

    def create(self, traits: dict[str, Any]) -> str:
        """A record by hand. Asked again after a lost answer, it meets the one the first
        request made (409: it looks like an existing record): then find that one."""
        r = self.call("POST", "/api/patient/patients", json=traits, accept=(409,))
        if r.status_code == 201:
            self.ledger.created[traits["birth_name"]] = "hand"
            return str(r.json()["id"])
        if r.extensions["attempt"] == 1:
            raise DriverError(f"a new record was refused at the first attempt: {r.text}")
        self.ledger.created[traits["birth_name"]] = "hand (answer lost)"
        found = self.call(
            "GET", "/api/patient/patients", params={"name": traits["birth_name"], "limit": 5}
        ).json()["items"]
        matching = [p for p in found if p["birth_name"] == traits["birth_name"]]
        if len(matching) != 1:
            raise DriverError(f"{len(matching)} records for one creation")
        return str(matching[0]["id"])

    def read(self, patient_id: str) -> None:
        r = self.call("GET", f"/api/patient/patients/{patient_id}")
        self.ledger.reads.append((patient_id, r.extensions["request_id"]))

    def form(self, patient_id: str) -> None:
        self.call(
            "POST",
            f"/api/forms/patients/{patient_id}/submissions",
            json={"form_id": "aggir", "answers": AGGIR_GIR6, "complete": True},
        )
        self.ledger.forms += 1

    def document(self, patient_id: str) -> None:
        """Draft from the template, finalise, sign with the cachet: to the DMP (qualifiée INS)
        and by MSSanté to the correspondent. A step whose answer was lost is seen done by
        reading the document again (412: its version moved)."""
        drafted = self.call(
            "POST",
            f"/api/documents/patients/{patient_id}/documents",
            json={"template_id": self.template},
        )
        document_id = str(drafted.json()["id"])
        self.ledger.drafts += 1
        url = f"/api/documents/documents/{document_id}"
        etag = drafted.headers["ETag"]
        for step, done_status, body in (
            ("finalize", "final", None),
            ("sign", "signed", {"mssante": [{"kind": "professional", "address": CORRESPONDENT}]}),
        ):
            r = self.call(
                "POST",
                f"{url}/{step}",
                json=body,
                headers={"If-Match": etag},
                accept=(409, 412),
            )
            if r.status_code in (409, 412):
                current = self.call("GET", url)
                if current.json()["status"] != done_status:
                    raise DriverError(f"{step}: {r.status_code} {r.text}")
                r = current
            etag = r.headers["ETag"]
        self.ledger.signed[document_id] = patient_id
        self.ledger.sends.append(document_id)

    def fork(self, seed: float) -> Driver:
        """A second professional's session on its own connection, the same ledger."""
        other = Driver(self.base, random.Random(seed), ledger=self.ledger, stop=self.stop)
        other.headers = dict(self.headers)
        other.template = self.template
        return other

    def run(self, rounds: Callable[[], None]) -> None:
        """`rounds()` until told to stop; the first error stops every worker."""
        try:
            while not self.stop.is_set():
                rounds()
                # A professional's pace, not a synchronisation (returns at once when stopped).
                self.stop.wait(self.rng.uniform(0.1, 0.6))
        except BaseException as error:
            self.error = error
            self.stop.set()

    def records(self) -> None:
        """A patient by hand, read, and a qualified one read; a form; now and then a card."""
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        born = date(1920, 1, 1) + timedelta(days=self.rng.randrange(15000))
        patient_id = self.create(
            {
                "birth_name": "CHAOS" + "".join(self.rng.choices(letters, k=8)),
                "birth_given_names": "Jeanne",
                "sex": self.rng.choice("MF"),
                "birth_date": born.isoformat(),
            }
        )
        self.read(patient_id)
        self.read(self.rng.choice(list(self.ledger.qualified)))
        self.form(patient_id)
        if self.rng.random() < 0.2:
            self.from_card_read(DURAND_CARD, 0, None)

    def documents(self) -> None:
        """A signed document for a qualified patient (DMP and MSSanté)."""
        self.document(self.rng.choice(list(self.ledger.qualified)))


# -- the campaign ----------------------------------------------------------------------------


@dataclass
class Restart:
    service: str
    seconds: float | None = None  # from the restart until caught up
    ready_seconds: float | None = None  # from the restart until /health/ready said so
    error: str | None = None


@dataclass
class Campaign:
    seed: int
    kills: list[Restart] = field(default_factory=list)
    ledger: Ledger | None = None
    failures: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # reported, never asserted
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"crash campaign: seed {self.seed}, {len(self.kills)} kills "
            f"(goal: caught up in under {GOAL_SECONDS:.0f} s)"
        ]
        per: dict[str, list[Restart]] = {}
        for kill in self.kills:
            per.setdefault(kill.service, []).append(kill)
        lines.append(
            f"  {'service':<15}{'kills':>6}{'caught up p50':>15}{'max':>7}"
            f"{'ready p50':>11}{'max':>7}{'over goal':>11}"
        )

        def stats(values: list[float | None]) -> str:
            known = [v for v in values if v is not None]
            if not known:
                return f"{'-':>8}{'-':>7}"
            return f"{statistics.median(known):>7.1f}s{max(known):>6.1f}s"

        for name in sorted(per):
            caught = [k.seconds for k in per[name]]
            ready = [k.ready_seconds for k in per[name]]
            over = sum(t is not None and t > GOAL_SECONDS for t in caught)
            lines.append(
                f"  {name:<15}{len(per[name]):>6}{stats(caught):>22}{stats(ready):>18}{over:>11}"
            )
        if self.ledger is not None:
            led = self.ledger
            lines.append(
                f"  workload: {len(led.created)} patients created, {len(led.reads)} reads, "
                f"{led.forms} forms, {len(led.signed)} documents signed, {len(led.sends)} "
                f"MSSanté sends, {led.retries} requests asked again, longest wait for an "
                f"answer {led.longest_wait[0]:.1f} s ({led.longest_wait[1]})"
            )
        if self.phases:
            lines.append("  phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.phases.items()))
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.extend(f"  FAILED: {failure}" for failure in self.failures)
        return "\n".join(lines)


def kill_loop(
    cluster: Cluster,
    campaign: Campaign,
    kills: int,
    rng: random.Random,
    driver: Driver,
    progress: Callable[[str], None],
) -> None:
    """SIGKILL a random process at a random moment and restart it; a watcher thread measures
    its way back (ready, then caught up) while the next kills go on. A process still on its
    way back is not chosen (several may be down at once; each recovery is measured alone)."""
    names = sorted(cluster.processes)
    recovering: set[str] = set()
    lock = threading.Lock()
    watchers: list[threading.Thread] = []

    def watch(process: Process, restart: Restart, heads: dict[str, int], outbox: int) -> None:
        started = time.monotonic()
        try:
            poll(process.ready, functools.partial(process.waited_for, "be ready"), CATCH_UP_LIMIT)
            restart.ready_seconds = time.monotonic() - started
            poll(
                functools.partial(cluster.caught_up, process, heads, outbox),
                functools.partial(process.waited_for, "catch up"),
                CATCH_UP_LIMIT,
            )
            restart.seconds = time.monotonic() - started
            progress(
                f"  {process.name}: ready in {restart.ready_seconds:.1f} s, "
                f"caught up in {restart.seconds:.1f} s"
            )
        except AssertionError as error:
            restart.error = str(error)
            campaign.failures.append(f"{process.name} did not recover after a restart: {error}")
        finally:
            with lock:
                recovering.discard(process.name)

    for number in range(1, kills + 1):
        if driver.stop.is_set() or campaign.failures:
            break
        time.sleep(rng.uniform(0.3, 3.0))  # the random moment (not a synchronisation)
        poll(lambda: len(recovering) < len(names), "a process to recover", 2 * CATCH_UP_LIMIT)
        with lock:
            name = rng.choice([n for n in names if n not in recovering])
        process = cluster.processes[name]
        with lock:
            recovering.add(name)
        progress(f"kill {number}/{kills}: {name}")
        process.kill()
        heads = cluster.heads(process)
        outbox = cluster.outbox_mark(process)
        process.start()
        restart = Restart(name)
        campaign.kills.append(restart)
        watcher = threading.Thread(
            target=watch, args=(process, restart, heads, outbox), name=f"watch:{name}", daemon=True
        )
        watcher.start()
        watchers.append(watcher)
    for watcher in watchers:
        watcher.join(3 * CATCH_UP_LIMIT)


def drain(cluster: Cluster, driver: Driver) -> dict[str, int]:
    """Everything the workload started has reached its end (conditions, never a sleep).

    Returns each service's last outbox row once it was all published: the checks make requests
    of their own (the administrator's login emits UserLoggedIn), whose rows are not the
    campaign's and may still be on their way when the outboxes are checked."""
    led = driver.ledger

    behind: list[str] = []
    marks: dict[str, int] = {}

    def all_caught_up() -> bool:
        marks.clear()
        behind.clear()
        for p in cluster.processes.values():
            marks[p.name] = cluster.outbox_mark(p)
            if not cluster.caught_up(p, cluster.heads(p), marks[p.name]) or any(
                cluster.jobs(p)[s] for s in ("pending", "running")
            ):
                behind.append(p.name)
        return not behind

    def still(what: str) -> Callable[[], str]:
        return lambda: f"{what} (still behind: {behind})"

    poll(all_caught_up, still("every service to drain its log, outbox and jobs"), DRAIN_LIMIT)

    states: Counter[str] = Counter()

    def dmp_submitted() -> bool:
        states.clear()
        for document_id in led.signed:
            r = driver.call("GET", f"/api/dmp-connector/documents/{document_id}/dmp", accept=(404,))
            states[r.json()["state"] if r.status_code == 200 else "unknown"] += 1
        return set(states) <= {"submitted"}

    poll(
        dmp_submitted,
        lambda: f"every signed document to be submitted to the DMP (now: {dict(states)})",
        DRAIN_LIMIT,
    )
    poll(
        lambda: len(cluster.operator.messages(CORRESPONDENT)) >= len(led.sends),
        "every MSSanté message at the peer",
        DRAIN_LIMIT,
    )
    poll(all_caught_up, still("every service to drain again"), DRAIN_LIMIT)
    return dict(marks)


def check(cluster: Cluster, driver: Driver, drained: dict[str, int]) -> list[str]:
    """The exactly-once checks; the list of what does not hold. `drained`: each service's last
    outbox row of the campaign (`drain`'s answer)."""
    led = driver.ledger
    failures: list[str] = []

    # Every signed document in the DMP simulator exactly once.
    held: Counter[str] = Counter()
    for ins in set(led.qualified.values()):
        for document in cluster.dmp_documents(ins):
            held[str(document["unique_id"]).rsplit("^", 1)[-1]] += 1
    for document_id in led.signed:
        if held[document_id] != 1:
            failures.append(f"document {document_id} is {held[document_id]} times in the DMP")
    extra = set(held) - set(led.signed)
    if extra:
        failures.append(f"{len(extra)} documents in the DMP the driver never signed")

    # Every MSSanté message at the peer exactly once (by Message-ID), one per send asked.
    def ids(raws: list[bytes]) -> list[str]:
        return [
            str(
                BytesParser(policy=policy.default).parsebytes(m, headersonly=True)["Message-ID"]
            ).strip()
            for m in raws
        ]

    assert cluster.operator.smtp is not None
    mailbox = list(cluster.operator.messages(CORRESPONDENT))
    in_box = Counter(ids(mailbox))
    submitted = set(ids(list(cluster.operator.smtp.stats.received)))
    if any(n != 1 for n in in_box.values()):
        failures.append(
            f"a Message-ID is more than once in the peer's mailbox: {in_box.most_common(3)}"
        )
    if len(in_box) != len(led.sends):
        failures.append(f"{len(in_box)} messages at the peer for {len(led.sends)} sends asked")
    if len(submitted) != len(led.sends):
        failures.append(
            f"{len(submitted)} distinct Message-IDs submitted for {len(led.sends)} sends asked"
        )

    # Every patient creation counted once in the usage indicators.
    listed = driver.call("GET", "/api/patient/patients", params={"limit": 1}).json()["total"]
    names: Counter[str] = Counter()
    page = 0
    while True:
        items = driver.call(
            "GET", "/api/patient/patients", params={"limit": 50, "offset": page * 50}
        ).json()["items"]
        names.update(p["birth_name"] for p in items)
        if len(items) < 50:
            break
        page += 1
    for name, how in led.created.items():
        if how.startswith("hand") and names[name] != 1:
            failures.append(f"{names[name]} records of one creation by hand ({how})")
    admin = driver.token(ADMIN)  # the structure's administrator reads the indicators
    usage = driver.call("GET", "/api/sla-monitor/usage/patients-created", headers=admin).json()[
        "total"
    ]
    if usage != listed:
        failures.append(
            f"usage indicator counts {usage} patients created, the structure has {listed}"
        )

    # Every patient read audited exactly once.
    audits = [a for a in cluster.audit() if a["acting_structure"] == STRUCTURE]
    # One request may audit several accesses (documents reading the record and a form with
    # its service token): once per request, service, resource and acting client.
    per_access = Counter(
        (a["patient_id"], a["request_id"], a["service"], a["resource"], a["service_client"])
        for a in audits
        if a["action"] == "read" and a.get("request_id")
    )
    for patient_id, request_id in led.reads:
        n = per_access[(patient_id, request_id, "patient", "patient", None)]
        if n != 1:
            failures.append(f"a patient read acknowledged to the driver is audited {n} times")
    twice = [k for k, n in per_access.items() if n > 1]
    if twice:
        failures.append(f"{len(twice)} accesses audited more than once: {twice[:3]}")

    # No outbox row stuck, no job left running or failed.
    for process in cluster.processes.values():
        if process.store is None:
            continue
        unsent = cluster.outbox_unsent(process, drained.get(process.name))
        if unsent:
            failures.append(f"{process.name}: {unsent} outbox rows unsent")
        if cluster.outbox_parked(process):
            failures.append(f"{process.name}: {cluster.outbox_parked(process)} outbox rows parked")
        jobs = cluster.jobs(process)
        for state in ("pending", "running", "failed"):
            if jobs[state]:
                failures.append(f"{process.name}: {jobs[state]} jobs {state}")
    if led.server_errors:
        failures.append(f"{len(led.server_errors)} server errors: {led.server_errors[:3]}")
    return failures


def run_campaign(
    root: Path, *, kills: int, seed: int, progress: Callable[[str], None] | None = None
) -> Campaign:
    """Start, drive and kill, drain, check; everything stopped on return."""
    rng = random.Random(seed)
    campaign = Campaign(seed)
    cluster = Cluster(root)
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        campaign.phases[name] = now - clock
        clock = now

    try:
        cluster.start()
        phase("start")
        driver = Driver(cluster.gateway, random.Random(rng.random()))
        second: Driver | None = None
        try:
            driver.setup()
            # Two professionals: documents (the slow, CPU-heavy part) do not hold up records.
            second = driver.fork(rng.random())
            workers = [
                threading.Thread(target=driver.run, args=(driver.records,), daemon=True),
                threading.Thread(target=second.run, args=(second.documents,), daemon=True),
            ]
            for worker in workers:
                worker.start()
            phase("setup")
            kill_loop(cluster, campaign, kills, rng, driver, progress or (lambda _: None))
            # A short campaign still checks a few documents end to end.
            poll(
                lambda: len(driver.ledger.signed) >= MIN_DOCUMENTS or driver.stop.is_set(),
                f"the driver to sign {MIN_DOCUMENTS} documents",
                DRAIN_LIMIT,
            )
            driver.stop.set()
            for worker in workers:
                worker.join(DRAIN_LIMIT * 2)
            campaign.ledger = driver.ledger
            for worker_driver in (driver, second):
                if worker_driver.error is not None:
                    campaign.failures.append(f"the driver stopped: {worker_driver.error!r}")
            if any(worker.is_alive() for worker in workers):
                campaign.failures.append("the driver did not stop")
            if not campaign.failures:
                phase("kills")
                drained = drain(cluster, driver)
                phase("drain")
                campaign.failures.extend(check(cluster, driver, drained))
                campaign.notes.append(
                    "POSTs without an idempotency key, asked again after a lost answer: "
                    f"{cluster.count('forms', 'submissions')} form submissions stored for "
                    f"{driver.ledger.forms} acknowledged, {cluster.count('documents', 'documents')}"
                    f" documents for {driver.ledger.drafts} drafts acknowledged"
                )
                phase("checks")
        finally:
            driver.close()
            if second is not None:
                second.close()
    except AssertionError as error:
        campaign.failures.append(str(error))
    finally:
        cluster.stop()
    return campaign


def main() -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=int(os.environ.get("CHAOS_KILLS", "100")))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", help="Directory to run in and keep (default: a temporary one)")
    args = parser.parse_args()
    seed = (
        args.seed
        if args.seed is not None
        else int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    )
    print(f"crash campaign: seed {seed} (CHAOS_SEED={seed} replays it)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bsante-chaos-") as tmp:
        campaign = run_campaign(
            Path(args.keep or tmp),
            kills=args.kills,
            seed=seed,
            progress=functools.partial(print, flush=True),
        )
    print(campaign.report(), flush=True)
    return 1 if campaign.failures else 0


if __name__ == "__main__":
    sys.exit(main())
