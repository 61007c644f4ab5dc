"""The SLA monitor in the embedded platform: probes, incidents, tickets, compliance, usage.

Probe cycles are run by the test (`monitor.cycle(at=...)`) with the periodic task switched off,
so the times are the test's and nothing waits for a timer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager
from kit import TILLEULS, Platform, eventually  # type: ignore[import-not-found]

from bsante.chassis.bus import Message
from bsante.chassis.store import Query
from bsante.contracts import topics
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    DmpDocumentSubmitted,
    DmpIntent,
    DocumentSigned,
    InsQualified,
    JobFailed,
    MssRecipient,
    PatientCreated,
)
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services
from bsante.sla_monitor import probes
from bsante.sla_monitor.monitor import Monitor

SLA = "/api/sla-monitor"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def sla(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Platform]:
    async with _platform(tmp_path, monkeypatch) as platform:
        yield platform


@asynccontextmanager
async def _platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Platform]:
    monkeypatch.setenv("SLA_MONITOR_PROBES_ENABLED", "false")
    monkeypatch.setenv("SLA_MONITOR_SYNTHETIC_USERNAME", TILLEULS[0])
    monkeypatch.setenv("SLA_MONITOR_SYNTHETIC_PASSWORD", TILLEULS[1])
    services = build_services(tmp_path)
    app = build_embedded(GatewaySettings(), services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield Platform(client, services, tmp_path)


def monitor_of(p: Platform) -> Monitor:
    m: Monitor = p.services["sla-monitor"].app.state.monitor
    return m


def ops(p: Platform) -> dict[str, str]:
    return p.as_role("ops", "bsante-ops")


def admin(p: Platform, structure: str = "demo-ehpad") -> dict[str, str]:
    return p.as_role("structure_admin", structure)


async def events_of(p: Platform, event_type: str, count: int = 1) -> list[dict[str, Any]]:
    """The sla-monitor's events of a type on its topic, once at least `count` were published
    (the relay publishes them after the commit)."""
    bus = p.services["sla-monitor"].bus
    found: list[dict[str, Any]] = []

    async def published() -> bool:
        found[:] = [
            e
            for e in (json.loads(m.value) for m in await bus.read(topics.SLA_MONITOR))  # type: ignore[attr-defined]
            if e["event_type"] == event_type
        ]
        return len(found) >= count

    await eventually(published)
    return found


class Broken(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": 503})


async def test_probes_store_results_and_every_target_is_up(sla: Platform) -> None:
    m = monitor_of(sla)
    names = {t.name for t in m.prober.targets}
    assert {"health:identity", "health:patient", "health:sla-monitor", "health:forms"} <= names
    assert {"synthetic:login", "synthetic:patient_read", "synthetic:document_rendering"} <= names
    at = datetime.now(UTC) - timedelta(minutes=10)
    for n in range(3):
        report = await m.cycle(at=at + timedelta(seconds=30 * n))
        assert all(r.up for r in report.results), [
            (r.target.name, r.reason) for r in report.results
        ]
    states = await probes.current_states(sla.services["sla-monitor"].store)
    assert {s["target"] for s in states} == names
    spans = await sla.services["sla-monitor"].store.find(probes.SPANS, Query(limit=100))
    assert len(spans) == len(names)  # one span per target, extended, not one row per probe
    r = await sla.client.get(f"{SLA}/sla/availability?period=day", headers=ops(sla))
    assert r.status_code == 200, r.text
    platform_rows = [row for row in r.json()["rows"] if row["target"] == "platform"]
    assert platform_rows and all(row["ratio_24x7"] in (None, 1.0) for row in platform_rows)


async def test_a_failing_service_opens_one_majeur_incident_and_recovery_closes_it(
    sla: Platform,
) -> None:
    m = monitor_of(sla)
    peers = m.prober.peers
    assert isinstance(peers, probes.InProcessPeers)
    at = datetime.now(UTC) - timedelta(hours=1)
    await m.cycle(at=at)
    # forms answers 503 from now on.
    good = peers.client("forms")
    peers._clients["forms"] = httpx.AsyncClient(transport=Broken(), base_url="http://forms")
    first_failure = at + timedelta(minutes=1)
    opened: list[str] = []
    for n in range(4):
        report = await m.cycle(at=first_failure + timedelta(minutes=n))
        opened += report.opened
    assert opened == [f"health:forms@{first_failure.isoformat()}"]  # after 3 failures, once
    r = await sla.client.get(f"{SLA}/sla/incidents", headers=ops(sla))
    [incident] = r.json()["items"]
    assert incident["priority"] == "majeur"
    # The restoration clock started at the first failed probe, 4 h on the 24/7 calendar.
    deadline = datetime.fromisoformat(incident["restoration_deadline"])
    assert deadline == first_failure + timedelta(hours=4)
    assert [e["payload"]["ticket_id"] for e in await events_of(sla, "TicketOpened")] == [
        incident["ticket_id"]
    ]
    # Other roles are refused the ops route.
    r = await sla.client.get(f"{SLA}/sla/incidents", headers=admin(sla))
    assert r.status_code == 403
    peers._clients["forms"] = good
    report = await m.cycle(at=first_failure + timedelta(minutes=10))
    assert report.closed == opened
    [closed] = await events_of(sla, "IncidentClosed")
    assert closed["payload"]["within_restoration_target"] is True
    r = await sla.client.get(f"{SLA}/sla/availability?period=day", headers=ops(sla))
    forms = [row for row in r.json()["rows"] if row["target"] == "health:forms"]
    # Down from the first failed probe to the first successful one: 10 minutes.
    assert [row["down_seconds_24x7"] for row in forms if row["down_seconds_24x7"]] == [600]


async def test_an_outage_past_four_hours_emits_sla_breached_once(sla: Platform) -> None:
    m = monitor_of(sla)
    peers = m.prober.peers
    assert isinstance(peers, probes.InProcessPeers)
    start = datetime.now(UTC) - timedelta(hours=6)
    for name in list(m.prober.services):
        peers._clients[name] = httpx.AsyncClient(transport=Broken(), base_url=f"http://{name}")
    for n in range(3):
        await m.cycle(at=start + timedelta(minutes=n))
    r = await sla.client.get(f"{SLA}/sla/incidents", headers=ops(sla))
    [incident] = r.json()["items"]
    assert (incident["scope"], incident["priority"]) == ("platform", "bloquant")
    await m.cycle(at=start + timedelta(hours=4, minutes=1))
    await m.cycle(at=start + timedelta(hours=4, minutes=2))
    breaches = [
        e for e in await events_of(sla, "SlaBreached") if e["payload"]["subject_kind"] == "incident"
    ]
    assert [b["payload"]["indicator"] for b in breaches] == ["restoration"]


async def test_job_failures_above_the_threshold_open_an_incident(sla: Platform) -> None:
    m = monitor_of(sla)
    svc = sla.services["sla-monitor"]
    now = datetime.now(UTC)
    from bsante.sla_monitor import incidents

    async def fail(n: int) -> None:
        async def block(uow: Any) -> None:
            await incidents.record_job_failure(
                uow,
                JobFailed(
                    service="patient",
                    job_id=f"job-{n}",
                    kind="insi",
                    attempts=5,
                    reason="attempts_exhausted",
                    error_type="Timeout",
                    error_message="timed out",
                    created_at=now,
                    failed_at=now - timedelta(minutes=1),
                ),
            )

        await svc.messaging.run_unit_of_work(block)

    for n in range(4):
        await fail(n)
    assert (await m.cycle(at=now)).opened == []
    await fail(4)
    await fail(4)  # the same job twice counts once
    [opened] = (await m.cycle(at=now)).opened
    assert opened.startswith("jobs:patient@")
    assert (await m.cycle(at=now + timedelta(minutes=30))).closed == [opened]


async def open_ticket(p: Platform, headers: dict[str, str], **body: Any) -> httpx.Response:
    payload = {"category": "incident", "priority": "bloquant", "summary": "Impression KO", **body}
    return await p.client.post(f"{SLA}/tickets", json=payload, headers=headers)


async def test_ticket_life_with_clocks_pauses_and_transitions(sla: Platform) -> None:
    opened_at = datetime.now(UTC) - timedelta(days=3)
    r = await open_ticket(sla, admin(sla), opened_at=opened_at.isoformat())
    assert r.status_code == 201, r.text
    ticket = r.json()
    tid = ticket["id"]
    assert {c["indicator"] for c in ticket["clocks"]} >= {"take_in", "qualification"}
    [opened] = await events_of(sla, "TicketOpened")
    assert opened["payload"]["deadlines"]["take_in"]
    url = f"{SLA}/tickets/{tid}"
    # Closing an unqualified ticket is impossible: 409, and nothing changes.
    r = await sla.client.post(f"{url}/close", json={}, headers=ops(sla))
    assert r.status_code == 409, r.text
    # Support steps are ops-only.
    r = await sla.client.post(f"{url}/take-in", json={}, headers=admin(sla))
    assert r.status_code == 403
    t0 = opened_at
    steps = [
        ("take-in", t0 + timedelta(minutes=10)),
        ("wait-for-customer", t0 + timedelta(minutes=20)),
    ]
    for action, at in steps:
        r = await sla.client.post(f"{url}/{action}", json={"at": at.isoformat()}, headers=ops(sla))
        assert r.status_code == 200, (action, r.text)
    r = await sla.client.post(
        f"{url}/customer-replied",
        json={"at": (t0 + timedelta(hours=1)).isoformat()},
        headers=admin(sla),
    )
    assert r.status_code == 200, r.text
    qualification = next(c for c in r.json()["clocks"] if c["indicator"] == "qualification")
    assert len(qualification["pauses"]) == 1  # the interval itself is kept
    assert qualification["deadline"] >= qualification["initial_deadline"]
    # A priority change supersedes the priority-bound clocks and starts new ones; the old
    # deadlines stay as they were.
    r = await sla.client.post(
        f"{url}/priority",
        json={"at": (t0 + timedelta(hours=1, minutes=5)).isoformat(), "priority": "majeur"},
        headers=ops(sla),
    )
    assert r.status_code == 200, r.text
    clocks = {(c["indicator"], c["sequence"]): c for c in r.json()["clocks"]}
    assert clocks[("resolution_bloquant", 1)]["stop_reason"] == "priority_changed"
    started = datetime.fromisoformat(clocks[("resolution_majeur", 1)]["started_at"])
    assert started == t0 + timedelta(hours=1, minutes=5)
    before = {(c["indicator"], c["sequence"]): c["initial_deadline"] for c in ticket["clocks"]}
    assert all(clocks[k]["initial_deadline"] == d for k, d in before.items())
    # A date before the last step, or in the future, is out of reason: 422.
    r = await sla.client.post(f"{url}/qualify", json={"at": t0.isoformat()}, headers=ops(sla))
    assert r.status_code == 422
    r = await sla.client.post(
        f"{url}/qualify",
        json={"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
        headers=ops(sla),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at"
    for action in ("qualify", "resolve"):
        r = await sla.client.post(
            f"{url}/{action}", json={"at": (t0 + timedelta(hours=2)).isoformat()}, headers=ops(sla)
        )
        assert r.status_code == 200, r.text
    r = await sla.client.post(f"{url}/resolve", json={}, headers=ops(sla))
    assert r.status_code == 409  # resolving twice
    r = await sla.client.post(f"{url}/close", json={}, headers=ops(sla))
    assert r.status_code == 200 and r.json()["state"] == "closed"


async def test_a_structure_sees_only_its_tickets(sla: Platform) -> None:
    mine = (await open_ticket(sla, admin(sla, "demo-ehpad"))).json()["id"]
    theirs = (await open_ticket(sla, admin(sla, "demo-ssiad"))).json()["id"]
    r = await sla.client.get(f"{SLA}/tickets", headers=admin(sla, "demo-ehpad"))
    assert [t["id"] for t in r.json()["items"]] == [mine]
    r = await sla.client.get(f"{SLA}/tickets/{theirs}", headers=admin(sla, "demo-ehpad"))
    assert r.status_code == 404
    r = await sla.client.post(
        f"{SLA}/tickets/{theirs}/customer-replied", json={}, headers=admin(sla, "demo-ehpad")
    )
    assert r.status_code == 404
    r = await sla.client.get(f"{SLA}/tickets", headers=ops(sla))
    assert {t["id"] for t in r.json()["items"]} == {mine, theirs}


async def test_bad_ticket_input_is_422_naming_the_field(sla: Platform) -> None:
    r = await open_ticket(sla, admin(sla), priority="urgent")
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("priority")
    r = await open_ticket(sla, admin(sla), opened_at="2020-01-01T10:00:00+01:00")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "opened_at"
    r = await open_ticket(sla, admin(sla), opened_at="2026-01-01T10:00:00")
    assert r.status_code == 422
    r = await open_ticket(sla, admin(sla), category="card_reader_replacement")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phase"
    r = await sla.client.get(f"{SLA}/tickets/{uuid.uuid4()}", headers=admin(sla))
    assert r.status_code == 404


async def test_a_late_take_in_is_a_breach_in_the_monthly_compliance(sla: Platform) -> None:
    m = monitor_of(sla)
    # Ten days ago: whatever today is, its 30 service minutes of take-in have passed.
    opened_at = datetime.now(UTC) - timedelta(days=10)
    r = await open_ticket(sla, admin(sla), priority="mineur", opened_at=opened_at.isoformat())
    ticket = r.json()
    take_in = next(c for c in ticket["clocks"] if c["indicator"] == "take_in")
    assert take_in["outcome"] == "running"  # as computed at opening
    await m.cycle()
    await m.cycle()  # a second watch fires nothing new
    breaches = [
        e for e in await events_of(sla, "SlaBreached") if e["payload"]["subject_id"] == ticket["id"]
    ]
    assert sorted(b["payload"]["indicator"] for b in breaches) == sorted(
        c["indicator"] for c in ticket["clocks"]
    )
    month = datetime.fromisoformat(take_in["started_at"]).astimezone(PARIS).strftime("%Y-%m")
    r = await sla.client.get(f"{SLA}/sla/compliance?month={month}", headers=admin(sla))
    assert r.status_code == 200, r.text
    row = next(i for i in r.json()["indicators"] if i["indicator"] == "take_in")
    assert [b["subject_id"] for b in row["breaches"]] == [ticket["id"]]
    assert row["share"] == 0.0 and row["compliant"] is False
    r = await sla.client.get(f"{SLA}/sla/compliance?month=2026-13", headers=admin(sla))
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("indicator", "start", "pauses", "expected"),
    [
        ("intervention", "2026-12-24T17:00:00+01:00", [], "2026-12-24T18:00:00+01:00"),
        ("qualification", "2026-12-24T17:00:00+01:00", [], "2026-12-26T11:00:00+01:00"),
        ("restoration", "2027-03-27T23:00:00+01:00", [], "2027-03-28T04:00:00+02:00"),
        (
            "qualification",
            "2027-11-10T16:00:00+01:00",
            [["2027-11-10T17:00:00+01:00", "2027-11-12T10:00:00+01:00"]],
            "2027-11-12T13:00:00+01:00",
        ),
    ],
)
async def test_the_deadline_of_any_indicator_can_be_asked(
    sla: Platform, indicator: str, start: str, pauses: list[list[str]], expected: str
) -> None:
    r = await sla.client.post(
        f"{SLA}/sla/deadline",
        json={
            "indicator": indicator,
            "start": start,
            "pauses": [{"start": a, "end": b} for a, b in pauses],
        },
        headers=ops(sla),
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["deadline"]) == datetime.fromisoformat(expected)


async def test_deadline_input_out_of_reason_is_422(sla: Platform) -> None:
    body = {"indicator": "take_in", "start": "1900-01-01T00:00:00+00:00"}
    r = await sla.client.post(f"{SLA}/sla/deadline", json=body, headers=ops(sla))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "start"
    body = {"indicator": "take_in", "start": "2026-12-01T10:00:00"}
    r = await sla.client.post(f"{SLA}/sla/deadline", json=body, headers=ops(sla))
    assert r.status_code == 422
    # Availability is a rate, measured by no clock: no deadline (found by `make fuzz`).
    body = {"indicator": "availability", "start": "2026-12-01T10:00:00+00:00"}
    r = await sla.client.post(f"{SLA}/sla/deadline", json=body, headers=ops(sla))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "indicator", r.text


def envelope_of(payload: Any, structure: str, subject: str) -> Message:
    envelope = Envelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        producer="test",
        structure_id=structure,
        subject_id=subject,
        correlation_id="test",
        payload=payload.model_dump(mode="json"),
    )
    return Message(payload.topic, subject, envelope.to_json())


def signed(patient_id: uuid.UUID, type_code: str, mss: bool) -> DocumentSigned:
    return DocumentSigned(
        document_id=uuid.uuid4(),
        set_id=uuid.uuid4(),
        version=1,
        patient_id=patient_id,
        author_id="u1",
        legal_authenticator_id="u1",
        type_code=type_code,
        signed_at=datetime.now(UTC),
        cda_sha256="0" * 64,
        cda_size=10,
        pdf_sha256="0" * 64,
        pdf_size=10,
        dmp=DmpIntent(requested=True),
        mssante=[MssRecipient(kind="structure", address="x@mssante.fr")] if mss else [],
    )


async def test_usage_indicators_from_documents_and_ins_events(sla: Platform) -> None:
    svc = sla.services["sla-monitor"]
    assert svc.events is not None
    qualified, other = uuid.uuid4(), uuid.uuid4()
    fed = signed(qualified, "11488-4", mss=True)
    messages = [
        PatientCreated(patient_id=qualified, identity_status="provisoire", created_by="u1"),
        PatientCreated(patient_id=other, identity_status="provisoire", created_by="u1"),
        InsQualified(
            patient_id=qualified,
            ins_oid="1.2.250.1.213.1.4.8",
            qualified_by="u1",
            via="insi",
            qualified_at=datetime.now(UTC),
        ),
        fed,
        signed(qualified, "11488-4", mss=False),
        signed(other, "34133-9", mss=False),
        # The DMP acknowledged one of the qualified patient's two documents.
        DmpDocumentSubmitted(
            document_id=fed.document_id,
            patient_id=qualified,
            unique_id="1.2.250.1.999.1.1.42",
            submitted_at=datetime.now(UTC),
        ),
    ]
    for n, payload in enumerate(messages):
        message = envelope_of(payload, "demo-ehpad", f"s{n}")
        await svc.events.dispatch(svc.messaging, svc.consumer_group, message)
        # Delivered twice: the inbox makes the second delivery a no-op.
        await svc.events.dispatch(svc.messaging, svc.consumer_group, message)
    r = await sla.client.get(f"{SLA}/usage/indicators", headers=admin(sla))
    assert r.status_code == 200, r.text
    [month] = r.json()["months"]
    assert month["counters"]["documents_signed"] == 3
    assert month["documents_per_type"] == {"11488-4": 2, "34133-9": 1}
    # DMP feeding rate: one document fed (counted once though delivered twice) over the 2
    # documents of the qualified patient.
    assert month["counters"]["documents_signed_ins_qualified"] == 2
    assert month["counters"]["dmp_documents_fed"] == 1
    assert month["rates"]["dmp_feeding_rate"] == 0.5
    assert month["rates"]["ins_qualified_share"] == 0.5
    assert month["rates"]["mssante_sending_rate"] == 0.0
    # Another structure sees none of it.
    r = await sla.client.get(f"{SLA}/usage/indicators", headers=admin(sla, "demo-ssiad"))
    assert r.json()["months"] == []


# Far ahead of and far behind UTC: at any moment, in one of them at least, today's local date
# is not today's UTC date.
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_the_default_period_ends_on_the_local_day(
    zone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indicators count local days: the default period ends on today's local date, so what
    happened just now is counted whatever the UTC date is."""
    monkeypatch.setenv("SLA_MONITOR_TIMEZONE", zone)
    async with _platform(tmp_path, monkeypatch) as sla:
        svc = sla.services["sla-monitor"]
        assert svc.events is not None
        created = PatientCreated(
            patient_id=uuid.uuid4(), identity_status="provisoire", created_by="u1"
        )
        await svc.events.dispatch(
            svc.messaging, svc.consumer_group, envelope_of(created, "demo-ehpad", "s1")
        )
        r = await sla.client.get(f"{SLA}/usage/patients-created", headers=admin(sla))
        assert r.status_code == 200, r.text
        today = datetime.now(ZoneInfo(zone)).date().isoformat()
        assert r.json()["days"] == [{"day": today, "count": 1}]
        r = await sla.client.get(f"{SLA}/usage/indicators", headers=admin(sla))
        [month] = r.json()["months"]
        assert month["month"] == today[:7]
        assert month["counters"]["patients_created"] == 1


def working_morning() -> datetime:
    """10:00 in Paris on a working day of last week (no holiday, inside service hours)."""
    from bsante.sla_monitor.contract.calendars import FrenchHolidays

    day = datetime.now(PARIS).date() - timedelta(days=7)
    while day.weekday() >= 5 or day in FrenchHolidays():
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, tzinfo=PARIS)


class DeadLetters:
    """Stands in for the bus's dead-letter topics: `count[topic]` letters on `<topic>.dlq`."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    async def read(self, topic: str) -> list[int]:
        return list(range(self.count.get(topic.removesuffix(".dlq"), 0)))


async def test_dead_letter_growth_above_the_threshold_opens_an_incident(sla: Platform) -> None:
    m = monitor_of(sla)
    fake = DeadLetters()
    m.dead_letters = fake
    m.dead_letter_topics = (topics.PATIENT,)
    now = datetime.now(UTC) - timedelta(hours=2)
    fake.count[topics.PATIENT] = 3  # old letters: not growth
    assert (await m.cycle(at=now)).opened == []
    fake.count[topics.PATIENT] = 12
    assert (await m.cycle(at=now + timedelta(minutes=1))).opened == []  # 9 new: below 10
    fake.count[topics.PATIENT] = 13
    [opened] = (await m.cycle(at=now + timedelta(minutes=2))).opened
    assert opened.startswith(f"dead_letters:{topics.PATIENT}@")
    # No new dead letter for a whole window: recovered.
    assert (await m.cycle(at=now + timedelta(minutes=20))).closed == [opened]


async def test_a_stopped_clock_is_observed_in_its_contract_bucket(sla: Platform) -> None:
    from prometheus_client import REGISTRY

    labels = {"indicator": "take_in", "priority": "majeur", "calendar": "service_hours"}

    def within(le: str) -> float:
        value = REGISTRY.get_sample_value(
            "slamonitor_clock_duration_seconds_bucket", {**labels, "le": le}
        )
        return value or 0.0

    before_30, before_1h = within("1800.0"), within("3600.0")
    opened_at = working_morning()
    ticket = (
        await open_ticket(sla, admin(sla), priority="majeur", opened_at=opened_at.isoformat())
    ).json()
    # Taken in after 40 service minutes: past the 30-minute bucket, within the 1-hour one.
    r = await sla.client.post(
        f"{SLA}/tickets/{ticket['id']}/take-in",
        json={"at": (opened_at + timedelta(minutes=40)).isoformat()},
        headers=ops(sla),
    )
    assert r.status_code == 200, r.text
    [clock] = [c for c in r.json()["clocks"] if c["indicator"] == "take_in"]
    assert clock["outcome"] == "breached"
    assert within("1800.0") == before_30
    assert within("3600.0") == before_1h + 1


async def test_the_escalation_watch_reaches_every_open_ticket(sla: Platform) -> None:
    from bsante.sla_monitor import support

    opened_at = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    tickets = [
        (await open_ticket(sla, admin(sla), priority="mineur", opened_at=opened_at)).json()
        for _ in range(3)
    ]
    clocks = sum(len(t["clocks"]) for t in tickets)
    svc = sla.services["sla-monitor"]
    # Pages of one ticket: the last ticket is watched too. Ten days late, each clock fires
    # both levels (80 % spent, deadline reached), once.
    fired = await support.watch_tickets(svc.messaging, datetime.now(UTC), batch=1)
    assert fired == 2 * clocks
    breached = await events_of(sla, "SlaBreached", count=clocks)
    assert {b["payload"]["subject_id"] for b in breached} == {t["id"] for t in tickets}
    assert await support.watch_tickets(svc.messaging, datetime.now(UTC), batch=1) == 0


async def test_document_rendering_is_a_synthetic_transaction(sla: Platform) -> None:
    """The rendering probe renders a sample PDF/A through documents' own path; a documents
    service that cannot render makes that synthetic transaction fail, the others stay up."""
    rendered = await sla.client.post("/api/documents/probes/rendering", headers=admin(sla))
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["media_type"] == "application/pdf" and rendered.json()["size"] > 1000
    doctor = sla.as_role("medecin")
    assert (
        await sla.client.post("/api/documents/probes/rendering", headers=doctor)
    ).status_code == 403

    m = monitor_of(sla)
    peers = m.prober.peers
    assert isinstance(peers, probes.InProcessPeers)
    peers._clients["documents"] = httpx.AsyncClient(transport=Broken(), base_url="http://documents")
    report = await m.cycle(at=datetime.now(UTC))
    down = {r.target.name for r in report.results if not r.up}
    assert down == {"synthetic:document_rendering", "health:documents"}
