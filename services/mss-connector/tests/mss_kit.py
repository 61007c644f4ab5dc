"""Helpers of the mss-connector tests: signed artefacts built with the documents toolkit, a fake
documents service (same routes and scopes, over real HTTP semantics in-process), the connector
on SQLite and the embedded bus, and the loopback operator (aiosmtpd + Dovecot)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.routing import Mount

from bsante.chassis.auth import SigningKey, issue_token
from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.service import Service
from bsante.contracts import topics
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import DmpIntent, DocumentSigned, MssRecipient
from bsante.documents import samples
from bsante.documents.cda import build_cda_n1, to_bytes
from bsante.mss_connector import dovecot
from bsante.mss_connector.app import build
from bsante.mss_connector.documents import HttpDocuments
from bsante.mss_connector.settings import MssConnectorSettings, StructureMailboxes
from bsante.mss_connector.simulator import CORRESPONDENT, Operator

needs_dovecot = pytest.mark.skipif(
    not dovecot.available(),
    reason="Debian's dovecot-imapd is not installed (make test installs it)",
)
STRUCTURE = "demo-ehpad"
PDF = b"%PDF-1.4\n% a tiny stand-in for the signed PDF/A\n%%EOF\n"
READ_TOKEN = "token-documents-read"
ATTACH_TOKEN = "token-documents-attach"


def signed_cda(*, with_ins: bool = True, document_id: str = "doc-0001") -> bytes:
    return to_bytes(
        build_cda_n1(
            samples.metadata(document_id=document_id),
            samples.patient(with_ins=with_ins),
            samples.author(),
            PDF,
        )
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class FakeDocuments:
    """The documents service's internal routes: artefacts by id, received documents recorded
    (idempotent on origin and source id, as the contract says)."""

    artefacts: dict[tuple[str, str], bytes] = field(default_factory=dict)
    received: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    fetches: int = 0
    # In the embedded platform the connector's token comes from identity: take any bearer.
    any_token: bool = False

    def _allowed(self, authorization: str | None, token: str) -> bool:
        if self.any_token:
            return bool(authorization and authorization.startswith("Bearer "))
        return authorization == f"Bearer {token}"

    def add(self, cda: bytes, pdf: bytes = PDF) -> uuid.UUID:
        document_id = uuid.uuid4()
        self.artefacts[(str(document_id), "cda")] = cda
        self.artefacts[(str(document_id), "pdf")] = pdf
        return document_id

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/documents/{document_id}/{artefact}")
        async def artefact(
            document_id: str, artefact: str, authorization: str = Header("")
        ) -> Response:
            if not self._allowed(authorization, READ_TOKEN):
                raise HTTPException(403)
            content = self.artefacts.get((document_id, artefact))
            if content is None:
                raise HTTPException(404)
            self.fetches += 1
            media = "application/xml" if artefact == "cda" else "application/pdf"
            return Response(content, media_type=media)

        @app.post("/internal/patients/{patient_id}/received-documents")
        async def attach(patient_id: str, request: Request) -> Response:
            if not self._allowed(request.headers.get("authorization"), ATTACH_TOKEN):
                raise HTTPException(403)
            if not request.headers.get("x-structure-id"):
                # As the documents service: the mailbox's structure is required.
                raise HTTPException(422, "X-Structure-Id missing")
            # multipart/form-data read with the standard library (no form parser needed here).
            body = await request.body()
            head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
            form = BytesParser(policy=policy.HTTP).parsebytes(head + body)
            parts = {
                part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in form.iter_parts()
            }
            meta = json.loads(parts["metadata"])
            content = parts["file"]
            key = (meta["origin"], meta["source_id"])
            if key in self.received:
                existing = self.received[key]
                return Response(json.dumps({"document_id": existing["id"]}), 200)
            self.received[key] = {
                "id": str(uuid.uuid4()),
                "patient_id": patient_id,
                "content": content,
                "metadata": meta,
            }
            return Response(json.dumps({"document_id": self.received[key]["id"]}), 201)

        return app


class StaticTokens:
    """Stands in for identity's client-credentials grant: one token per scope set."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        return None


class SplitDocuments(HttpDocuments):
    """HttpDocuments with the read token for fetches and the attach token for attachments
    (the real connector's token carries both scopes)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        super().__init__(
            "http://documents", StaticTokens(READ_TOKEN), timeout=10, transport=transport
        )  # type: ignore[arg-type]
        self._attach = HttpDocuments(
            "http://documents",
            StaticTokens(ATTACH_TOKEN),
            timeout=10,
            transport=transport,  # type: ignore[arg-type]
        )

    async def attach(self, patient_id: str, content: bytes, metadata: dict[str, Any]) -> str:
        return await self._attach.attach(patient_id, content, metadata)


def document_signed(
    document_id: uuid.UUID,
    cda: bytes,
    *,
    recipients: list[MssRecipient],
    patient_id: uuid.UUID | None = None,
    author_id: str = "user-dr-lemaire",
) -> Envelope:
    payload = DocumentSigned(
        document_id=document_id,
        set_id=uuid.uuid4(),
        version=1,
        patient_id=patient_id or uuid.uuid4(),
        author_id=author_id,
        legal_authenticator_id=author_id,
        type_code="11488-4",
        title="Compte rendu de consultation",
        signed_at=datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
        cda_sha256=hashlib.sha256(cda).hexdigest(),
        cda_size=len(cda),
        pdf_sha256=hashlib.sha256(PDF).hexdigest(),
        pdf_size=len(PDF),
        dmp=DmpIntent(requested=False),
        mssante=recipients,
    )
    return Envelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        producer="documents",
        structure_id=STRUCTURE,
        subject_id=str(payload.set_id),
        correlation_id=str(uuid.uuid4()),
        payload=payload.model_dump(mode="json"),
    )


@dataclass
class Connector:
    client: httpx.AsyncClient
    service: Service[MssConnectorSettings]
    documents: FakeDocuments
    operator: Operator
    key: SigningKey
    data: Path

    def headers(
        self, *, roles: tuple[str, ...] = ("medecin",), user: str = "user-1"
    ) -> dict[str, str]:
        token = issue_token(
            self.key,
            subject=user,
            structures=[STRUCTURE],
            roles={STRUCTURE: list(roles)},
            profession=None,
            issuer="bsante-identity",
            audience="bsante",
            ttl_seconds=900,
        )
        return {"Authorization": f"Bearer {token}", "X-Structure-Id": STRUCTURE}

    async def publish(self, envelope: Envelope) -> None:
        bus = EmbeddedBus(self.data)
        await bus.start()
        try:
            await bus.publish(Message(topics.DOCUMENTS, envelope.subject_id, envelope.to_json()))
        finally:
            await bus.stop()

    async def events(self, event_type: str) -> list[Envelope]:
        bus = EmbeddedBus(self.data)
        await bus.start()
        try:
            found = [Envelope.from_json(m.value) for m in await bus.read(topics.MSS_CONNECTOR)]
        finally:
            await bus.stop()
        return [e for e in found if e.event_type == event_type]

    async def wait_events(self, event_type: str, count: int = 1) -> list[Envelope]:
        found: list[Envelope] = []

        async def enough() -> bool:
            nonlocal found
            found = await self.events(event_type)
            return len(found) >= count

        await eventually(enough)
        return found

    async def messages(self, patient_id: uuid.UUID) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/api/mss-connector/messages",
            params={"patient_id": str(patient_id)},
            headers=self.headers(),
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


def connector_settings(data: Path, operator: Operator, **overrides: Any) -> MssConnectorSettings:
    mailboxes = {
        STRUCTURE: StructureMailboxes(
            organisational=operator.mailbox(operator.structures[STRUCTURE])
        )
    }
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{data / 'mss-connector.db'}",
        "blob_url": f"file://{data / 'blobs'}",
        "bus_url": f"embedded://{data}",
        "mailboxes": mailboxes,
        "poll_interval_seconds": 0.2,
        "smtp_timeout_seconds": 10,
        **overrides,
    }
    return MssConnectorSettings(**values)


@asynccontextmanager
async def running_operator(root: Path, *, with_imap: bool = True) -> AsyncIterator[Operator]:
    operator = Operator(
        root, mailboxes={STRUCTURE: "secretariat@tilleuls.mssante.fr"}, with_imap=with_imap
    )
    await operator.start()
    try:
        yield operator
    finally:
        await operator.stop()


class FakePatients:
    """Stands for the patient service's INS look-up: (structure, matricule, oid) -> record."""

    def __init__(self) -> None:
        self.qualifiee: dict[tuple[str, str, str], str] = {}
        self.asked: list[tuple[str, str, str]] = []

    async def by_ins(self, structure_id: str, matricule: str, oid: str) -> str | None:
        self.asked.append((structure_id, matricule, oid))
        return self.qualifiee.get((structure_id, matricule, oid))


@asynccontextmanager
async def connector(
    data: Path,
    operator: Operator,
    documents: FakeDocuments | None = None,
    patients: FakePatients | None = None,
    **overrides: Any,
) -> AsyncIterator[Connector]:
    data = data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()

    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    documents = documents or FakeDocuments()
    transport = httpx.ASGITransport(app=documents.app())
    service = build(
        connector_settings(data, operator, **overrides),
        jwks=jwks,
        documents=SplitDocuments(transport),
        patients=patients or FakePatients(),
    )
    app = Starlette(routes=[Mount("/api/mss-connector", app=service.app)])
    await service.start()
    try:
        client_transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=client_transport, base_url="http://mss") as client:
            yield Connector(client, service, documents, operator, key, data)
    finally:
        await service.stop()


__all__ = [
    "CORRESPONDENT",
    "STRUCTURE",
    "Connector",
    "FakePatients",
    "connector",
    "running_operator",
]
