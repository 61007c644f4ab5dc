"""Composition root of the documents service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import httpx
from pydantic import SecretStr

from bsante.chassis.auth import JwksSource
from bsante.chassis.blobs import BlobKind
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.chassis.service_client import ServiceClient, token_provider
from bsante.chassis.tasks import LongRunning
from bsante.contracts.permissions import ServiceScope
from bsante.documents import repository
from bsante.documents.checks import IsolatedConformance, KitConformance
from bsante.documents.cps import CpsSigning
from bsante.documents.editor import EditorLimits
from bsante.documents.handlers import Ports
from bsante.documents.handlers.common import PDF, XML, BlobKinds, Conformance
from bsante.documents.handlers.templates import seed_demo
from bsante.documents.http import router
from bsante.documents.sealing import Sealer, configured_sealer
from bsante.documents.settings import DocumentsSettings
from bsante.documents.signing import load_certificates
from bsante.documents.sources import HttpSources, Sources

# What the documents service asks its peers for, with its own service token.
SCOPES = [ServiceScope.PATIENT_READ, ServiceScope.DIRECTORY_READ, ServiceScope.FORMS_READ]
DEMO_STRUCTURES = ["demo-ehpad", "demo-ssiad"]
RECEIVED_MEDIA_TYPES = frozenset({PDF, XML, "text/xml", "image/jpeg", "image/png"})
WARM_UP_TASK = "conformance-warm-up"


def _warm_up_task(warm_up: Callable[[], Awaitable[object]]) -> LongRunning:
    """Compile the conformance validator's schematrons once the service has started: readiness
    does not wait for it, and a failure is retried with backoff (and shown by readiness after
    three in a row). Once done, the task only idles until the service stops.

    The worker process's compilation is awaited, not waited for in a thread: a service stopped
    meanwhile leaves no thread for the process's exit to join (it would wait for the end of tens
    of seconds of compilation). An in-process check compiles in a thread of its own rather than
    in the CPU pool, so as not to hold a worker that PDF rendering needs; a signature arriving
    meanwhile waits for the validator's lock in its worker thread, never on the event loop.
    """

    async def run() -> None:
        await warm_up()
        await asyncio.Event().wait()

    return LongRunning(WARM_UP_TASK, run)


def _sources(
    settings: DocumentsSettings,
    transports: dict[str, httpx.AsyncBaseTransport | None],
) -> Sources:
    tokens = token_provider(settings, list(SCOPES), transport=transports.get("token"))

    def client(url: str, name: str) -> ServiceClient:
        return ServiceClient(
            url,
            tokens,
            timeout=settings.peer_timeout_seconds,
            transport=transports.get(name),
        )

    http = HttpSources(
        client(settings.patient_url, "patient"),
        client(settings.identity_url, "identity"),
        client(settings.forms_url, "forms"),
    )
    return Sources(patients=http, directory=http, results=http)


def build(
    settings: DocumentsSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
    sources: Sources | None = None,
    sealer: Sealer | None = None,
    conformance: Conformance | None | bool = True,
    transports: dict[str, httpx.AsyncBaseTransport | None] | None = None,
    demo_structures: Sequence[str] = DEMO_STRUCTURES,
) -> Service[DocumentsSettings]:
    """`sources` replaces the peers (tests); `transports` reach them in-process (embedded:
    keys patient, identity, forms, token). `conformance`: True checks with the CI-SIS kit when
    it is installed, False never, or a given check (one with a `warm_up()` method is warmed up
    in the background at start: `_warm_up_task`). `sealer`: the signing module's, else
    nothing is sealed."""
    settings = settings or DocumentsSettings()

    async def seed(svc: Service[DocumentsSettings]) -> None:
        if svc.settings.seed_demo:
            await seed_demo(svc.store, list(demo_structures))

    svc = Service(
        settings,
        title="Bureautique Santé — documents",
        routers=[router],
        indexes=repository.INDEXES,
        blobs=True,
        jwks=jwks,
        on_start=[seed],
        standalone=standalone,
    )
    check: Conformance | None
    if conformance is True:
        check = IsolatedConformance.located(settings.cisis_kit)
    elif conformance is False:
        check = None
    else:
        check = conformance
    kit_root = (
        check.kit_root
        if isinstance(check, KitConformance | IsolatedConformance)
        else settings.cisis_kit or None
    )
    upload_limit = settings.max_upload_bytes
    svc.app.state.ports = Ports(
        store=svc.store,
        unit_of_work=svc.messaging.unit_of_work,
        blobs=svc.blobs,
        sources=sources or _sources(settings, transports or {}),
        sealer=sealer or configured_sealer(settings),
        cps=CpsSigning(
            settings.card_bridge_url,
            load_certificates(settings.cps_trust_anchor_files),
            timeout_seconds=settings.card_bridge_timeout_seconds,
        ),
        conformance=check,
        kinds=BlobKinds(
            pdf=BlobKind("document-pdf", 50_000_000, frozenset({PDF})),
            cda=BlobKind("document-cda", 70_000_000, frozenset({XML})),
            received=BlobKind("received-document", upload_limit, RECEIVED_MEDIA_TYPES),
        ),
        limits=EditorLimits(max_bytes=settings.max_editor_bytes),
        id_root=settings.id_root,
        ipp_root=settings.ipp_root,
    )
    svc.app.state.kit_root = kit_root
    if isinstance(check, IsolatedConformance):
        svc.supervise(_warm_up_task(check.warm_up_async))
    elif callable(warm_up := getattr(check, "warm_up", None)):
        in_thread = warm_up
        svc.supervise(_warm_up_task(lambda: asyncio.to_thread(in_thread)))
    return svc


def build_embedded(context: EmbeddedContext) -> Service[DocumentsSettings]:
    """documents asks patient, identity and forms with its service token: in one process,
    straight to their apps."""
    secret = context.register_service_client("documents", list(SCOPES))
    settings = DocumentsSettings(
        store_url=context.store_url("documents"),
        blob_url=context.blob_url("documents"),
        bus_url=context.bus_url,
        patient_url="http://patient",
        identity_url="http://identity",
        forms_url="http://forms",
        service_token_url="http://identity/oauth/token",
        service_client_secret=SecretStr(secret),
        # `make run`: a demo CA and cachet, made in the data directory at the first signature.
        signing_demo_pki_dir=str(context.data / "demo-pki"),
    )
    return build(
        settings,
        jwks=context.jwks,
        transports={
            "patient": context.transport("patient"),
            "identity": context.transport("identity"),
            "forms": context.transport("forms"),
            "token": context.transport("identity"),
        },
    )
