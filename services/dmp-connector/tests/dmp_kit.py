"""Helpers of the DMP connector tests: the DMP simulator as a real process, a fake documents
service (same route and scope as the real one), a fake token issuer, an in-memory patient
port, and the connector built on SQLite and the embedded bus."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.applications import Starlette
from starlette.routing import Mount

from bsante.chassis.auth import (
    ServicePrincipal,
    SigningKey,
    TokenVerifier,
    issue_service_token,
    issue_token,
    service_scope,
)
from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.errors import install_problem_handlers
from bsante.chassis.service import Service
from bsante.contracts import topics
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import (
    DmpIntent,
    DocumentSigned,
    InsQualified,
    PatientCreated,
    Payload,
)
from bsante.contracts.permissions import ServiceScope
from bsante.dmp_connector import pki
from bsante.dmp_connector.app import build
from bsante.dmp_connector.peers import PatientIns
from bsante.dmp_connector.settings import DmpConnectorSettings
from bsante.documents import cda, samples

STRUCTURE = "demo-ehpad"
# Its national id (1 + the FINESS of the sample author's organisation the CDAs carry): what the
# VIHF names, and what the DMP keys a structure's authorisations on.
STRUCT_ID_NAT = "1750000001"
INS = "279035121518989"  # the kit's test patient, in the simulator's demo set
INS_OID = "1.2.250.1.213.1.4.10"
RPPS_PS_ID_NAT = "810001234567"
# The simulator's patients in these tests: the kit's test patient, a closed DMP, and a patient
# whose DMP authorises the demo structure.
CLOSED_INS = "185057800608436"
AUTHORISED_INS = "162018885045327"
DATASET = {
    INS: {"status": "ouvert"},
    AUTHORISED_INS: {"status": "ouvert", "authorisations": {STRUCT_ID_NAT: "autorise"}},
    CLOSED_INS: {"status": "ferme"},
}


async def eventually(check: Any, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Simulator:
    url: str
    process: subprocess.Popen[bytes]

    def documents(self, ins: str | None = None) -> list[dict[str, Any]]:
        path = f"/patients/{ins}/documents" if ins else "/documents"
        return list(httpx.get(self.url + path, timeout=10).json()["documents"])

    def clear_faults(self) -> None:
        httpx.delete(self.url + "/faults", timeout=10)

    def fault(self, mode: str, count: int = 1, delay: float = 0.0) -> None:
        response = httpx.post(
            self.url + "/faults", json={"mode": mode, "count": count, "delay": delay}, timeout=10
        )
        assert response.status_code == 200, response.text


@contextmanager
def simulator(
    trust: Path | None,
    dataset: dict[str, Any] | None = None,
    tmp: Path | None = None,
    think_ms: float = 0.0,
) -> Iterator[Simulator]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "bsante.dmp_connector.simulator",
        "--port",
        str(port),
        "--think-ms",
        str(think_ms),
    ]
    if trust is not None:
        args += ["--trust-store", str(trust)]
    if dataset is not None and tmp is not None:
        path = tmp / f"dataset-{port}.json"
        path.write_text(json.dumps(dataset))
        args += ["--dataset", str(path)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            # Polling for the process to listen (not synchronising on time).
            import time

            time.sleep(0.05)
        else:
            raise AssertionError("the simulator did not start")
        yield Simulator(url, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- fakes of the platform services ------------------------------------------------------------


def fake_identity(key: SigningKey) -> FastAPI:
    app = FastAPI()

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        from urllib.parse import parse_qs

        form = parse_qs((await request.body()).decode())
        scopes = " ".join(form.get("scope", [])).split()
        return JSONResponse(
            {
                "access_token": issue_service_token(
                    key,
                    client_id="dmp-connector",
                    scopes=scopes,
                    issuer="bsante-identity",
                    audience="bsante",
                    ttl_seconds=600,
                ),
                "token_type": "Bearer",
                "expires_in": 600,
            }
        )

    @app.get("/internal/structures/{structure_id}")
    async def structure(structure_id: str) -> JSONResponse:
        if structure_id != STRUCTURE:
            return JSONResponse({"title": "No such structure"}, status_code=404)
        return JSONResponse({"id": structure_id, "name": "EHPAD démo", "finess": "750000001"})

    return app


DocumentsReader = Annotated[ServicePrincipal, service_scope(ServiceScope.DOCUMENTS_READ)]


@dataclass
class FakeDocuments:
    """The documents service's CDA route (scope documents:read), serving what tests put."""

    cda: dict[str, bytes] = field(default_factory=dict)
    requests: int = 0

    def app(self, key: SigningKey) -> FastAPI:
        app = FastAPI()

        async def jwks() -> dict[str, Any]:
            return {"keys": [key.public_jwk()]}

        app.state.verifier = TokenVerifier(jwks, issuer="bsante-identity", audience="bsante")
        install_problem_handlers(app)

        @app.get("/internal/documents/{document_id}/cda")
        async def signed_cda(document_id: str, caller: DocumentsReader) -> Response:
            self.requests += 1
            body = self.cda.get(document_id)
            if body is None:
                return JSONResponse(
                    {"title": "Not Found", "status": 404},
                    status_code=404,
                    media_type="application/problem+json",
                )
            return Response(body, media_type="application/xml")

        return app


@dataclass
class FakePatients:
    known: dict[str, PatientIns] = field(default_factory=dict)

    async def ins(
        self, patient_id: str, *, structure_id: str, on_behalf_of: str
    ) -> PatientIns | None:
        return self.known.get(patient_id)

    def add(
        self,
        *,
        ins: str | None = INS,
        status: str = "qualifiee",
        opposed: bool = False,
        patient_id: str | None = None,
    ) -> str:
        pid = patient_id or str(uuid.uuid4())
        self.known[pid] = PatientIns(pid, True, status, ins, INS_OID if ins else None, opposed)
        return pid


# -- the connector --------------------------------------------------------------------------------


@dataclass
class Connector:
    service: Service[DmpConnectorSettings]
    client: httpx.AsyncClient
    documents: FakeDocuments
    patients: FakePatients
    key: SigningKey
    data: Path
    pki: pki.Pki
    _n: int = 0

    def cda(
        self,
        patient_id: str,
        *,
        version: int = 1,
        parent: str | None = None,
        type_code: str = "11488-4",
        document_id: str | None = None,
        ins: str | None = INS,
    ) -> tuple[str, bytes]:
        document_id = document_id or str(uuid.uuid4())
        meta = samples.metadata(version=version, document_id=document_id)
        meta = meta.model_copy(
            update={
                "set_id": f"set-{patient_id[:8]}",
                "parent_document_id": parent,
                "type_code": type_code,
            }
        )
        patient = samples.patient(with_ins=ins is not None)
        if ins is not None:
            patient = patient.model_copy(update={"ins": ins})
        body = cda.to_bytes(cda.build_cda_n1(meta, patient, samples.author(), b"%PDF-1.7 demo"))
        self.documents.cda[document_id] = body
        return document_id, body

    def signed(
        self,
        patient_id: str,
        document_id: str,
        body: bytes,
        *,
        version: int = 1,
        parent: str | None = None,
        visibility: list[str] | None = None,
        requested: bool = True,
        sha256: str | None = None,
    ) -> DocumentSigned:
        return DocumentSigned(
            document_id=uuid.UUID(document_id),
            set_id=uuid.uuid4(),
            version=version,
            parent_document_id=uuid.UUID(parent) if parent else None,
            patient_id=uuid.UUID(patient_id),
            author_id="user-dr-martin",
            author_rpps="10001234567",
            legal_authenticator_id="user-dr-martin",
            type_code="11488-4",
            class_code=None,
            title="Compte rendu de consultation",
            signed_at=datetime.now(UTC),
            cda_sha256=sha256 or hashlib.sha256(body).hexdigest(),
            cda_size=len(body),
            pdf_sha256="0" * 64,
            pdf_size=1,
            dmp=DmpIntent(requested=requested, visibility=visibility or []),  # type: ignore[arg-type]
        )

    async def publish(self, payload: Payload, subject: str, structure: str = STRUCTURE) -> Envelope:
        envelope = Envelope(
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            producer="tests",
            structure_id=structure,
            subject_id=subject,
            correlation_id=str(uuid.uuid4()),
            payload=payload.model_dump(mode="json"),
        )
        bus = EmbeddedBus(self.data)
        await bus.start()
        try:
            await bus.publish(Message(payload.topic, subject, envelope.to_json(), {}))
        finally:
            await bus.stop()
        return envelope

    async def handled(self, envelope: Envelope) -> bool:
        return await self.service.store.inbox_contains(
            self.service.consumer_group, str(envelope.event_id)
        )

    async def qualified_patient(self, **kwargs: Any) -> str:
        pid = self.patients.add(**kwargs)
        await self.publish(
            PatientCreated(patient_id=uuid.UUID(pid), identity_status="qualifiee", created_by="u"),
            pid,
        )
        return pid

    async def qualify(self, pid: str) -> None:
        known = self.patients.known[pid]
        self.patients.known[pid] = PatientIns(
            pid, True, "qualifiee", known.ins or INS, INS_OID, known.dmp_opposition
        )
        await self.publish(
            InsQualified(
                patient_id=uuid.UUID(pid),
                ins_oid=INS_OID,
                qualified_by="u",
                via="insi",
                qualified_at=datetime.now(UTC),
            ),
            pid,
        )

    async def submission(self, document_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/dmp-connector/documents/{document_id}/dmp", headers=self.headers()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def state_is(self, document_id: str, *states: str) -> bool:
        doc = await self.service.store.get("submissions", document_id)
        return doc is not None and doc.data["state"] in states

    def headers(
        self,
        roles: tuple[str, ...] = ("medecin",),
        ps_id_nat: str | None = RPPS_PS_ID_NAT,
        profession: str | None = "10",
    ) -> dict[str, str]:
        token = issue_token(
            self.key,
            subject="user-dr-martin",
            structures=[STRUCTURE],
            roles={STRUCTURE: list(roles)},
            profession=profession,
            issuer="bsante-identity",
            audience="bsante",
            ttl_seconds=900,
            extra={"name": "Claire MARTIN", "ps_id_nat": ps_id_nat},
        )
        return {"Authorization": f"Bearer {token}", "X-Structure-Id": STRUCTURE}

    async def events(self, topic: str = topics.DMP_CONNECTOR) -> list[Envelope]:
        bus = EmbeddedBus(self.data)
        await bus.start()
        try:
            return [Envelope.from_json(m.value) for m in await bus.read(topic)]
        finally:
            await bus.stop()


def connector_settings(
    data: Path, dmp_url: str, demo: pki.Pki, **extra: Any
) -> DmpConnectorSettings:
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{data / 'dmp-connector.db'}",
        "bus_url": f"embedded://{data}",
        "documents_url": "http://documents",
        "identity_url": "http://identity",
        "service_token_url": "http://identity/oauth/token",
        "service_client_secret": "s",
        "dmp_repository_url": f"{dmp_url}/repository",
        "dmp_registry_url": f"{dmp_url}/registry",
        "dmp_admin_url": f"{dmp_url}/admin",
        "dmp_timeout_seconds": 5,
        "signing_cert_file": str(demo.cert),
        "signing_key_file": str(demo.key),
        "job_initial_backoff_seconds": 0.05,
        "job_attempts": 4,
    }
    return DmpConnectorSettings(**{**values, **extra})


@asynccontextmanager
async def connector(
    data: Path,
    dmp_url: str,
    demo: pki.Pki,
    dmp_transport: httpx.AsyncBaseTransport | None = None,
    **extra: Any,
) -> AsyncIterator[Connector]:
    data = data.resolve()
    key = SigningKey.generate()

    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    documents = FakeDocuments()
    patients = FakePatients()
    service = build(
        connector_settings(data, dmp_url, demo, **extra),
        jwks=jwks,
        patients=patients,
        documents_transport=httpx.ASGITransport(app=documents.app(key)),
        token_transport=httpx.ASGITransport(app=fake_identity(key)),
        dmp_transport=dmp_transport,
    )
    assert service.jobs is not None
    service.jobs.lease_margin = 2.0
    app = Starlette(routes=[Mount("/api/dmp-connector", app=service.app)])
    await service.start()
    try:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://dmp") as client:
            yield Connector(service, client, documents, patients, key, data, demo)
    finally:
        await service.stop()


def expired(days: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


class Recording(httpx.AsyncBaseTransport):
    """A real HTTP transport that keeps every request it sent (body and headers)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
