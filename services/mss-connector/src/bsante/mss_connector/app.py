"""Composition root of the mss-connector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import SecretStr

from bsante.chassis.auth import JwksSource
from bsante.chassis.blobs import BlobStore
from bsante.chassis.blobs.factory import blob_store_from_url
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.messaging import EventRouter, UnitOfWork
from bsante.chassis.service import Service
from bsante.chassis.service_client import token_provider
from bsante.chassis.store import Store
from bsante.chassis.store.factory import store_from_url
from bsante.chassis.tasks import Backoff, Periodic
from bsante.contracts.envelope import Envelope
from bsante.contracts.events import DocumentSigned
from bsante.contracts.permissions import ServiceScope
from bsante.mss_connector import http, inbound, outbound
from bsante.mss_connector.documents import DocumentsPort, HttpDocuments
from bsante.mss_connector.patients import HttpPatients, PatientsPort
from bsante.mss_connector.settings import MssConnectorSettings

SCOPES = [ServiceScope.DOCUMENTS_READ, ServiceScope.DOCUMENTS_ATTACH, ServiceScope.PATIENT_READ]
INDEXES = [*outbound.INDEXES, *inbound.INDEXES]


def build(
    settings: MssConnectorSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
    documents: DocumentsPort | None = None,
    documents_transport: httpx.AsyncBaseTransport | None = None,
    patients: PatientsPort | None = None,
    patient_transport: httpx.AsyncBaseTransport | None = None,
    token_transport: httpx.AsyncBaseTransport | None = None,
    store: Store | None = None,
    blobs: BlobStore | None = None,
    on_start: Any = (),
    on_stop: Any = (),
    routers: Sequence[APIRouter] = (),
) -> Service[MssConnectorSettings]:
    """`documents` replaces the documents service (tests); the transports reach it and
    identity in-process (embedded platform)."""
    settings = settings or MssConnectorSettings()
    database = settings.store_database or "mss_connector"
    store = store or store_from_url(settings.store_url, database=database)
    blobs = blobs or blob_store_from_url(settings.blob_url, database=database)
    tokens = None
    if documents is None or patients is None:
        tokens = token_provider(settings, [str(s) for s in SCOPES], transport=token_transport)
    if patients is None:
        assert tokens is not None
        patients = HttpPatients(
            settings.patient_url,
            tokens,
            timeout=settings.documents_timeout_seconds,
            transport=patient_transport,
        )
    if documents is None:
        assert tokens is not None
        documents = HttpDocuments(
            settings.documents_url,
            tokens,
            timeout=settings.documents_timeout_seconds,
            transport=documents_transport,
        )
    events = EventRouter(settings.service_name)

    @events.on(DocumentSigned)
    async def _signed(uow: UnitOfWork, envelope: Envelope, event: DocumentSigned) -> None:
        await outbound.on_document_signed(uow, envelope, event, settings=settings)

    svc: Service[MssConnectorSettings] = Service(
        settings,
        title="Bureautique Santé — mss-connector",
        routers=[http.router, *routers],
        events=events,
        store=store,
        blobs=blobs,
        jobs=[
            outbound.send_kind(settings, documents, store.get),
            inbound.attach_kind(store, blobs, documents),
            inbound.reply_kind(settings, store, blobs),
        ],
        indexes=INDEXES,
        jwks=jwks,
        standalone=standalone,
        on_start=on_start,
        on_stop=on_stop,
    )
    for structure_id, boxes in settings.mailboxes.items():
        for mailbox in [boxes.organisational, *boxes.users.values()]:
            if not mailbox.poll:
                continue
            poller = inbound.Poller(
                structure_id=structure_id,
                mailbox=mailbox,
                messaging=svc.messaging,
                store=store,
                blobs=blobs,
                settings=settings,
                patients=patients,
            )
            svc.supervise(
                Periodic(
                    f"imap:{poller.state_id}",
                    poller.poll_once,
                    every=settings.poll_interval_seconds,
                    backoff=Backoff(initial=1.0, maximum=300.0),
                )
            )
    return svc


def build_embedded(context: EmbeddedContext) -> Service[MssConnectorSettings]:
    """With the embedded MSSanté operator simulator (SMTP and IMAP on loopback), started and
    stopped with the service; the demo structures' mailboxes point at it."""
    from bsante.mss_connector import simulator

    secret = context.register_service_client("mss-connector", [str(s) for s in SCOPES])
    operator = simulator.Operator(context.data / "mssante")
    settings = MssConnectorSettings(
        store_url=context.store_url("mss-connector"),
        blob_url=context.blob_url("mss-connector"),
        bus_url=context.bus_url,
        documents_url="http://documents",
        patient_url="http://patient",
        service_token_url="http://identity/oauth/token",
        service_client_secret=SecretStr(secret),
        mailboxes=operator.demo_mailboxes(),
        poll_interval_seconds=5.0,
    )

    async def start_operator(_: Service[MssConnectorSettings]) -> None:
        await operator.start()

    async def stop_operator(_: Service[MssConnectorSettings]) -> None:
        await operator.stop()

    return build(
        settings,
        jwks=context.jwks,
        documents_transport=context.transport("documents"),
        patient_transport=context.transport("patient"),
        token_transport=context.transport("identity"),
        on_start=[start_operator],
        on_stop=[stop_operator],
        routers=[simulator.operator_router(operator)],
    )
