"""Every query the services run is backed by one of their declared indexes, and each service's
store declares exactly the list its composition root passes (`Service(indexes=...)`).

The workload goes through the embedded platform (gateway, real SQLite, embedded bus) and uses
every route that queries a collection; the shapes of those queries are recorded from the
moment each store is built, so the start-up work (claims backfill, demo seed) counts too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from kit import MEDECIN, TILLEULS, Platform, eventually  # type: ignore[import-not-found]

from bsante.chassis.jobs import INDEXES as JOB_INDEXES
from bsante.chassis.service import Service
from bsante.chassis.store import Index, Store
from bsante.chassis.store.sqlite import SqliteStore
from bsante.chassis.store.testing import QueryShape, recording_queries, unbacked
from bsante.dmp_connector import repository as dmp_repository
from bsante.documents import repository as documents_repository
from bsante.forms import repository as forms_repository
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.identity import app as identity_app
from bsante.mss_connector import app as mss_app
from bsante.patient import repository as patient_repository
from bsante.platform.embedded import build_services
from bsante.sla_monitor import app as sla_app

MONGODB_URI = os.environ.get("MONGODB_URI")
DECLARED: dict[str, list[Index]] = {
    "identity": identity_app.INDEXES,
    "patient": patient_repository.INDEXES,
    "forms": forms_repository.INDEXES,
    "sla-monitor": sla_app.INDEXES,
    "documents": documents_repository.INDEXES,
    "dmp-connector": [*dmp_repository.INDEXES, *JOB_INDEXES],
    "mss-connector": [*mss_app.INDEXES, *JOB_INDEXES],
}
# The collections the workload must have queried: a route that stops querying (or a workload
# that stops reaching it) shows here rather than passing unnoticed.
QUERIED = {
    "identity": {"users", "memberships", "professionals", "structures", "activities"}
    | {"access_audit"},
    "patient": {"patients", "postits", "correspondents", "timeline"},
    "forms": {"submissions"},
    "sla-monitor": {"usage_daily", "tickets", "incidents", "probe_states", "probe_spans"}
    | {"job_failures", "incident_claims"},
    "documents": {"templates", "documents"},
    "dmp-connector": {"_jobs"},
    "mss-connector": {"mss_messages", "mss_inbound", "_jobs"},
}
CARD: dict[str, Any] = {
    "workstation_id": "ws-1",
    "holder_nir": "1620188850453",
    "beneficiaries": [
        {
            "quality": "assure",
            "nir": "162018885045327",
            "birth_name": "DURAND",
            "given_name": "JEAN",
            "birth_date": "1962-01-15",
        }
    ],
}
ROUND = {
    "pulse": 72,
    "systolic_bp": 130,
    "diastolic_bp": 80,
    "temperature": 37.1,
    "glycaemia": 6.1,
    "glycaemia_unit": "mmol/L",
}


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[Platform, dict[str, set[QueryShape]]]]:
    """The platform, with the query shapes each service's store saw since it was built."""
    services = build_services(tmp_path)
    with ExitStack() as stack:
        shapes = {
            name: stack.enter_context(recording_queries(service.store))
            for name, service in services.items()
            if service.has_store
        }
        app = build_embedded(GatewaySettings(max_body_bytes=64 * 1024), services)
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
                yield Platform(client, services, tmp_path), shapes


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if "json" in response.headers.get("content-type", "") else None


async def patient_workload(platform: Platform, doctor: dict[str, str]) -> str:
    get, post = platform.client.get, platform.client.post
    created = ok(await platform.create_patient(doctor), 201)
    pid = created["id"]
    ok(
        await post(
            "/api/patient/patients/from-vitale",
            json={"card": CARD, "beneficiary": 0},
            headers=doctor,
        ),
        201,
    )
    for params in (
        {},
        {"name": "DUP"},
        {"given": "Mar"},
        {"birth_date": "1941-03-02"},
        {"ipp": created["ipp"]},
        {"ins": "162018885045327"},
        {"name": "DUR", "given": "J", "birth_date": "1962-01-15"},
    ):
        ok(await get("/api/patient/patients", params=params, headers=doctor))
    ok(await get(f"/api/patient/patients/{pid}", headers=doctor))
    ok(
        await post(
            f"/api/patient/patients/{pid}/postits", json={"text": "Allergie"}, headers=doctor
        ),
        201,
    )
    ok(await get(f"/api/patient/patients/{pid}/postits", headers=doctor))
    ok(
        await post(
            f"/api/patient/patients/{pid}/correspondents",
            json={"rpps": "10001000016", "role": "medecin_traitant", "display_name": "Dr Lemaire"},
            headers=doctor,
        ),
        201,
    )
    ok(await get(f"/api/patient/patients/{pid}/correspondents", headers=doctor))
    now = datetime.now(UTC)
    for params in (
        {},
        {"kind": ["patient_created", "form_completed"]},
        {
            "since": (now - timedelta(days=1)).isoformat(),
            "until": (now + timedelta(days=1)).isoformat(),
        },
    ):
        ok(await get(f"/api/patient/patients/{pid}/timeline", params=params, headers=doctor))
    return str(pid)


async def forms_workload(platform: Platform, doctor: dict[str, str], pid: str) -> None:
    get, post = platform.client.get, platform.client.post
    base = f"/api/forms/patients/{pid}"
    now = datetime.now(UTC).replace(microsecond=0)
    first = ok(
        await post(
            f"{base}/submissions",
            json={
                "form_id": "transmission",
                "answers": {
                    "target": "Chute",
                    "data": "Au sol",
                    "actions": "Relevée",
                    "occurred_at": iso(now - timedelta(hours=2)),
                },
                "complete": True,
            },
            headers=doctor,
        ),
        201,
    )
    ok(
        await post(
            f"/api/forms/submissions/{first['id']}/corrections",
            json={
                "answers": {
                    "target": "Chute",
                    "data": "Au sol",
                    "actions": "Relevée",
                    "results": "Pas de lésion",
                    "occurred_at": iso(now - timedelta(hours=2)),
                },
                "complete": True,
            },
            headers=doctor,
        ),
        201,
    )
    ok(
        await post(
            f"{base}/submissions",
            json={
                "form_id": "surveillance",
                "answers": {**ROUND, "measured_at": iso(now - timedelta(hours=1))},
                "complete": True,
            },
            headers=doctor,
        ),
        201,
    )
    for params in (
        {},
        {"form_id": "surveillance"},
        {"status": "completed"},
        {"form_id": "transmission", "status": "completed"},
    ):
        ok(await get(f"{base}/submissions", params=params, headers=doctor))
    ok(await get(f"{base}/transmissions", params={"target": "chute"}, headers=doctor))
    ok(await get(f"{base}/surveillance/readings", headers=doctor))
    ok(await get(f"{base}/surveillance/chart.svg", headers=doctor))
    ok(await get(f"{base}/dlu/prefill", headers=doctor))


async def documents_workload(platform: Platform, doctor: dict[str, str], pid: str) -> None:
    get, post = platform.client.get, platform.client.post
    templates = ok(await get("/api/documents/templates", headers=doctor))
    consultation = next(t for t in templates if t["type_code"] == "11488-4")
    ok(
        await post(
            f"/api/documents/patients/{pid}/documents",
            json={"template_id": consultation["id"]},
            headers=doctor,
        ),
        201,
    )
    ok(await get(f"/api/documents/patients/{pid}/documents", headers=doctor))
    for params in (
        {"author_id": "me"},
        {"status": "draft"},
        {"author_id": "me", "status": "draft"},
    ):
        ok(await get("/api/documents/documents", params=params, headers=doctor))


async def identity_workload(
    platform: Platform, admin: dict[str, str], doctor: dict[str, str], pid: str
) -> None:
    get = platform.client.get
    ok(await get("/api/identity/users", headers=admin))
    for params in (
        {},
        {"name": "lema"},
        {"rpps": "10001000016"},
        {"profession": "10"},
        {"city": "Paris"},
        {"name": "le", "profession": "10", "city": "Paris"},
    ):
        ok(await get("/api/identity/directory/professionals", params=params, headers=doctor))
    for params in ({}, {"name": "ehpad"}, {"finess": "750000001"}, {"city": "Paris"}):
        ok(await get("/api/identity/directory/structures", params=params, headers=doctor))
    ok(await get("/api/identity/directory/professionals/10001000016", headers=doctor))
    ok(await get("/api/identity/directory/structures/demo-ehpad", headers=doctor))

    async def audited() -> bool:
        page = ok(await get(f"/api/identity/audit/patients/{pid}", headers=admin))
        return bool(page["total"] > 0)

    await eventually(audited)
    me = ok(await get("/api/identity/me", headers=doctor))
    ok(await get(f"/api/identity/audit/users/{me['user_id']}", headers=admin))


async def sla_workload(platform: Platform) -> None:
    """Every sla-monitor route that queries, as support and as a structure, and a probe cycle
    (states, spans, incidents, job failures, the escalation watch)."""
    get, post = platform.client.get, platform.client.post
    ops, admin = platform.as_role("ops", "bsante-ops"), platform.as_role("structure_admin")
    ticket = ok(
        await post(
            "/api/sla-monitor/tickets",
            json={"category": "incident", "priority": "majeur", "summary": "Lenteurs"},
            headers=admin,
        ),
        201,
    )
    await platform.services["sla-monitor"].app.state.monitor.cycle()
    for headers in (ops, admin):
        for path in (
            "/tickets",
            "/tickets?open=true",
            f"/tickets/{ticket['id']}",
            "/sla/compliance",
            "/sla/availability?period=week",
            "/status/summary",
            "/usage/indicators",
        ):
            ok(await get("/api/sla-monitor" + path, headers=headers))
    for path in ("/sla/incidents", "/sla/burn-rates", "/ops/overview"):
        ok(await get("/api/sla-monitor" + path, headers=ops))


async def test_every_query_of_the_workload_is_backed_by_a_declared_index(
    recorded: tuple[Platform, dict[str, set[QueryShape]]],
) -> None:
    platform, shapes = recorded
    admin, doctor = await platform.login(TILLEULS), await platform.login(MEDECIN)
    pid = await patient_workload(platform, doctor)
    await forms_workload(platform, doctor, pid)
    await documents_workload(platform, doctor, pid)
    await identity_workload(platform, admin, doctor, pid)
    ok(
        await platform.client.get(
            "/api/mss-connector/messages", params={"patient_id": pid}, headers=doctor
        )
    )
    for state in ("to_match", "quarantined"):
        ok(
            await platform.client.get(
                "/api/mss-connector/inbox", params={"state": state}, headers=doctor
            )
        )

    async def counted() -> bool:
        usage_page = ok(
            await platform.client.get("/api/sla-monitor/usage/patients-created", headers=admin)
        )
        return bool(usage_page["total"] >= 2)

    await eventually(counted)
    await sla_workload(platform)

    assert set(shapes) == set(DECLARED)
    for name, wanted in QUERIED.items():
        assert wanted <= {s.collection for s in shapes[name]}, name
    missing = {name: unbacked(platform.services[name].store, seen) for name, seen in shapes.items()}
    assert not any(missing.values()), "queries without a declared index:\n" + "\n".join(
        f"  {name}: {shape}" for name, found in missing.items() for shape in found
    )


async def test_each_service_declares_exactly_its_list(
    recorded: tuple[Platform, dict[str, set[QueryShape]]],
) -> None:
    platform, _ = recorded
    for name, indexes in DECLARED.items():
        service: Service = platform.services[name]
        assert service.indexes == indexes, name
        assert sorted(service.store.declared_indexes(), key=str) == sorted(indexes, key=str), name
        assert await stored_index_names(service.store) >= {i.name for i in indexes}, name


async def stored_index_names(store: Store) -> set[str]:
    """The names of the indexes the database itself holds for declared indexes."""
    if isinstance(store, SqliteStore):
        async with store._r.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents'"
        ) as cursor:
            return {str(row[0]) for row in await cursor.fetchall()}
    from bsante.chassis.store.mongo import MongoStore

    assert isinstance(store, MongoStore)
    names: set[str] = set()
    for collection in await store._db.list_collection_names():
        async for index in await store._db[collection].list_indexes():
            names.add(str(index["name"]))
    return names


@pytest.mark.parametrize("adapter", ["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
async def test_the_declared_lists_are_what_each_adapter_creates(
    adapter: str, tmp_path: Path
) -> None:
    for name, indexes in DECLARED.items():
        store: Store
        if adapter == "sqlite":
            store = SqliteStore(tmp_path / f"{name}.db")
        else:
            if not MONGODB_URI:
                pytest.skip("MONGODB_URI not set: MongoDB variant of the declared indexes skipped")
            from bsante.chassis.store.mongo import MongoStore

            store = MongoStore(MONGODB_URI, f"bsante_indexes_{uuid.uuid4().hex[:8]}")
        await store.start()
        try:
            await store.ensure_indexes(indexes)
            await store.ensure_indexes(indexes)  # idempotent, as at every start
            assert sorted(store.declared_indexes(), key=str) == sorted(indexes, key=str), name
            assert await stored_index_names(store) >= {i.name for i in indexes}, name
        finally:
            if adapter == "mongodb":
                from bsante.chassis.store.mongo import MongoStore

                assert isinstance(store, MongoStore)
                await store._client.drop_database(store._db.name)
            await store.close()
