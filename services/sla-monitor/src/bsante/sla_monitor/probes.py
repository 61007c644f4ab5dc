"""Probes: every service's readiness and the synthetic transactions, run by a supervised task.

Targets are built from the service manifest (one `/health/ready` per service) and from
`SYNTHETIC`, a list where adding a transaction is one entry. Peers are reached through
`Peers`: in-process transports in the embedded platform, HTTP in the distributed topology.
Results are stored as state spans per target (one document per run of equal outcomes, its end
pushed forward at each probe), which is what availability needs, and which stays small.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

from bsante.chassis.store import Index, Query, Store, Transaction
from bsante.sla_monitor import metrics
from bsante.sla_monitor.contract.availability import Sample, Timeline, timeline

STATES = "probe_states"
SPANS = "probe_spans"
# Spans of a period (by their end), the targets' states in name order.
INDEXES: list[Index] = [Index(SPANS, ("end",)), Index(STATES, ("target",))]

ProbeKind = Literal["health", "synthetic"]


class ProbeFailed(Exception):
    """A probe saw the target fail; the message is a short reason without personal data."""


class Peers(Protocol):
    def client(self, service: str) -> httpx.AsyncClient: ...


class InProcessPeers:
    """Embedded platform: each service's app through its in-process transport."""

    def __init__(self, transport: Callable[[str], httpx.AsyncBaseTransport], timeout: float):
        self._transport = transport
        self._timeout = timeout
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, service: str) -> httpx.AsyncClient:
        found = self._clients.get(service)
        if found is None:
            found = httpx.AsyncClient(
                transport=self._transport(service),
                base_url=f"http://{service}",
                timeout=self._timeout,
            )
            self._clients[service] = found
        return found

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


class HttpPeers(InProcessPeers):
    """Distributed topology: `url_template` names each service's base URL
    (`http://{service}:8080` in compose and Kubernetes)."""

    def __init__(self, url_template: str, timeout: float) -> None:
        super().__init__(lambda _: httpx.AsyncHTTPTransport(), timeout)
        self._template = url_template

    def client(self, service: str) -> httpx.AsyncClient:
        found = self._clients.get(service)
        if found is None:
            found = httpx.AsyncClient(
                base_url=self._template.format(service=service), timeout=self._timeout
            )
            self._clients[service] = found
        return found


@dataclass
class Session:
    """What synthetic transactions of one cycle share (the token of the login transaction)."""

    username: str | None
    password: str | None
    token: str | None = None


@dataclass(frozen=True)
class Synthetic:
    """One synthetic transaction: `requires` names the services it needs (it is left out when
    one of them is not in the manifest), `run` raises ProbeFailed when it fails."""

    name: str
    requires: tuple[str, ...]
    run: Callable[[Peers, Session], Awaitable[None]]


async def _login(peers: Peers, session: Session) -> None:
    if not session.username or not session.password:
        raise ProbeFailed("no synthetic account configured")
    response = await peers.client("identity").post(
        "/auth/token", json={"username": session.username, "password": session.password}
    )
    if response.status_code != 200:
        raise ProbeFailed(f"login answered {response.status_code}")
    session.token = str(response.json()["access_token"])


async def _patient_read(peers: Peers, session: Session) -> None:
    if session.token is None:
        raise ProbeFailed("no token (login failed)")
    # The whole read path (token check, habilitation, store) on an id no patient has: no
    # patient data is read, so nothing is audited, and 404 is the healthy answer.
    response = await peers.client("patient").get(
        f"/patients/{uuid.UUID(int=0)}", headers={"Authorization": f"Bearer {session.token}"}
    )
    if response.status_code != 404:
        raise ProbeFailed(f"patient read answered {response.status_code}")


async def _document_rendering(peers: Peers, session: Session) -> None:
    if session.token is None:
        raise ProbeFailed("no token (login failed)")
    # A sample report (no one's data) rendered to PDF/A by the documents service's own path.
    response = await peers.client("documents").post(
        "/probes/rendering", headers={"Authorization": f"Bearer {session.token}"}
    )
    if response.status_code != 200:
        raise ProbeFailed(f"document rendering answered {response.status_code}")
    if response.json().get("size", 0) <= 0:
        raise ProbeFailed("document rendering produced nothing")


# In order: a transaction may use what an earlier one left in the session.
SYNTHETIC: list[Synthetic] = [
    Synthetic("login", ("identity",), _login),
    Synthetic("patient_read", ("identity", "patient"), _patient_read),
    Synthetic("document_rendering", ("identity", "documents"), _document_rendering),
]


@dataclass(frozen=True)
class Target:
    name: str  # health:<service> or synthetic:<name>
    kind: ProbeKind
    capability: str  # the service, or the synthetic transaction


def targets(services: Sequence[str], synthetic: Sequence[Synthetic] = SYNTHETIC) -> list[Target]:
    out = [Target(f"health:{s}", "health", s) for s in services]
    out += [
        Target(f"synthetic:{t.name}", "synthetic", t.name)
        for t in synthetic
        if all(r in services for r in t.requires)
    ]
    return out


@dataclass(frozen=True)
class Result:
    target: Target
    at: datetime
    up: bool
    seconds: float
    reason: str | None = None


@dataclass
class Prober:
    peers: Peers
    services: Sequence[str]
    timeout: float
    username: str | None = None
    password: str | None = None
    synthetic: Sequence[Synthetic] = field(default_factory=lambda: list(SYNTHETIC))

    @property
    def targets(self) -> list[Target]:
        # Without a synthetic account there is nothing to log in with: the transactions are
        # left out (not counted as failures).
        synthetic = self.synthetic if self.username and self.password else ()
        return targets(self.services, synthetic)

    async def _timed(self, target: Target, at: datetime, fn: Awaitable[None]) -> Result:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(fn, self.timeout)
        except ProbeFailed as error:
            return Result(target, at, False, time.perf_counter() - started, str(error)[:200])
        except TimeoutError:
            return Result(target, at, False, time.perf_counter() - started, "timeout")
        except httpx.HTTPError as error:
            return Result(target, at, False, time.perf_counter() - started, type(error).__name__)
        return Result(target, at, True, time.perf_counter() - started)

    async def _health(self, service: str) -> None:
        response = await self.peers.client(service).get("/health/ready")
        if response.status_code != 200:
            raise ProbeFailed(f"/health/ready answered {response.status_code}")

    async def run(self, at: datetime) -> list[Result]:
        """Health probes concurrently, then the synthetic transactions in order."""
        health = [t for t in self.targets if t.kind == "health"]
        results = list(
            await asyncio.gather(*(self._timed(t, at, self._health(t.capability)) for t in health))
        )
        session = Session(self.username, self.password)
        by_name = {t.name: t for t in self.synthetic}
        for target in self.targets:
            if target.kind == "synthetic":
                spec = by_name[target.capability]
                results.append(await self._timed(target, at, spec.run(self.peers, session)))
        for r in results:
            outcome = "success" if r.up else "failure"
            metrics.PROBES.labels(r.target.name, r.target.kind, outcome).inc()
            metrics.PROBE_UP.labels(r.target.name).set(1 if r.up else 0)
            metrics.PROBE_DURATION.labels(r.target.name).observe(r.seconds)
        return results


async def record(tx: Transaction, results: Sequence[Result]) -> dict[str, dict[str, Any]]:
    """Store each result (extend or start its span, update its state); the new states."""
    states: dict[str, dict[str, Any]] = {}
    for r in results:
        at = r.at.isoformat()
        doc = await tx.get(STATES, r.target.name)
        prev = doc.data if doc is not None else None
        same = prev is not None and prev["up"] == r.up
        failures = 0 if r.up else (prev["consecutive_failures"] + 1 if prev and same else 1)
        span_id: str = prev["span_id"] if same and prev else f"{r.target.name}@{at}"
        state: dict[str, Any] = {
            "target": r.target.name,
            "kind": r.target.kind,
            "capability": r.target.capability,
            "up": r.up,
            "since": prev["since"] if same and prev else at,
            "last_at": at,
            "consecutive_failures": failures,
            "reason": r.reason,
            "span_id": span_id,
        }
        if prev is not None and not same:
            # The previous span ends where this one starts: no unobserved hole between them.
            old = await tx.get(SPANS, prev["span_id"])
            if old is not None:
                await tx.update(SPANS, old.id, {**old.data, "end": at}, old.version)
        span = await tx.get(SPANS, span_id)
        if span is None:
            await tx.insert(
                SPANS,
                span_id,
                {"target": r.target.name, "up": r.up, "start": at, "end": at},
            )
        else:
            await tx.update(SPANS, span.id, {**span.data, "end": at}, span.version)
        if doc is None:
            await tx.insert(STATES, r.target.name, state)
        else:
            await tx.update(STATES, r.target.name, state, doc.version)
        states[r.target.name] = state
    return states


async def current_states(store: Store) -> list[dict[str, Any]]:
    return [
        d.data for d in await store.find(STATES, Query(order_by=[("target", False)], limit=500))
    ]


async def timelines(store: Store, start: datetime, end: datetime) -> dict[str, Timeline]:
    """Per target, what the probes saw in [start, end)."""
    docs = await store.find(
        SPANS,
        Query(where={"end": {"$gte": start.isoformat()}}, order_by=[("end", False)], limit=100_000),
    )
    samples: dict[str, list[Sample]] = {}
    last: dict[str, datetime] = {}
    for d in docs:
        s, e = datetime.fromisoformat(d.data["start"]), datetime.fromisoformat(d.data["end"])
        if s >= end:
            continue
        samples.setdefault(d.data["target"], []).append(Sample(s, d.data["up"]))
        last[d.data["target"]] = max(last.get(d.data["target"], e), e)
    return {t: timeline(ss, min(last[t], end)) for t, ss in samples.items()}
