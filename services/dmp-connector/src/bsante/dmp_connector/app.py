"""Composition root of the DMP connector."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from bsante.chassis.auth import JwksSource
from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.jobs import BreakerPolicy
from bsante.chassis.service import Service
from bsante.chassis.service_client import ServiceClient, token_provider
from bsante.chassis.store.factory import store_from_url
from bsante.chassis.tasks import LongRunning
from bsante.contracts.permissions import ServiceScope
from bsante.dmp_connector import pki, repository, vihf
from bsante.dmp_connector.dmp_client import DmpClient, Endpoints
from bsante.dmp_connector.feeding import ENDPOINT, Feeder, subscriptions
from bsante.dmp_connector.http import router
from bsante.dmp_connector.peers import (
    Documents,
    HttpDocuments,
    HttpPatients,
    HttpStructures,
    Patients,
    Structures,
)
from bsante.dmp_connector.settings import DmpConnectorSettings

log = structlog.get_logger(__name__)
SCOPES = [ServiceScope.PATIENT_READ, ServiceScope.DOCUMENTS_READ, ServiceScope.DIRECTORY_READ]


def signing_key(settings: DmpConnectorSettings) -> vihf.SigningKey:
    if not settings.signing_cert_file or not settings.signing_key_file:
        raise ValueError(
            "the DMP connector signs its VIHF: set DMP_CONNECTOR_SIGNING_CERT_FILE and "
            "DMP_CONNECTOR_SIGNING_KEY_FILE"
        )
    return vihf.SigningKey.from_files(
        Path(settings.signing_key_file), Path(settings.signing_cert_file)
    )


def build(
    settings: DmpConnectorSettings | None = None,
    *,
    standalone: bool = False,
    jwks: JwksSource | None = None,
    documents: Documents | None = None,
    patients: Patients | None = None,
    structures: Structures | None = None,
    documents_transport: httpx.AsyncBaseTransport | None = None,
    patient_transport: httpx.AsyncBaseTransport | None = None,
    identity_transport: httpx.AsyncBaseTransport | None = None,
    token_transport: httpx.AsyncBaseTransport | None = None,
    dmp_transport: httpx.AsyncBaseTransport | None = None,
    simulator_trust: Path | None = None,
) -> Service[DmpConnectorSettings]:
    """`documents`/`patients` replace the platform services (tests); the transports reach
    them in-process (embedded platform); `simulator_trust` starts the DMP simulator too."""
    settings = settings or DmpConnectorSettings()
    if documents is None or patients is None or structures is None:
        tokens = token_provider(settings, list(SCOPES), transport=token_transport)
        structures = structures or HttpStructures(
            ServiceClient(
                settings.identity_url,
                tokens,
                timeout=settings.peer_timeout_seconds,
                transport=identity_transport or token_transport,
            )
        )
        documents = documents or HttpDocuments(
            ServiceClient(
                settings.documents_url,
                tokens,
                timeout=settings.peer_timeout_seconds,
                transport=documents_transport,
            )
        )
        patients = patients or HttpPatients(
            ServiceClient(
                settings.patient_url,
                tokens,
                timeout=settings.peer_timeout_seconds,
                transport=patient_transport,
            )
        )
    tls = (
        (settings.dmp_tls_cert_file, settings.dmp_tls_key_file)
        if settings.dmp_tls_cert_file and settings.dmp_tls_key_file
        else None
    )
    dmp = DmpClient(
        Endpoints(settings.dmp_repository_url, settings.dmp_registry_url, settings.dmp_admin_url),
        signing_key(settings),
        vihf.Software(
            settings.lps_id,
            settings.lps_name,
            settings.lps_version,
            settings.lps_homologation or "NON-HOMOLOGUE",
        ),
        timeout=settings.dmp_timeout_seconds,
        tls_cert=tls,
        verify=settings.dmp_ca_file or True,
        transport=dmp_transport,
    )
    store = store_from_url(
        settings.store_url,
        database=settings.store_database or settings.service_name.replace("-", "_"),
    )
    feeder = Feeder(
        store=store,
        documents=documents,
        patients=patients,
        dmp=dmp,
        source_id=settings.source_id,
        practice_setting=settings.practice_setting_code,
    )

    async def close_dmp(_: Service[DmpConnectorSettings]) -> None:
        await dmp.close()

    tasks = []
    if simulator_trust is not None:
        tasks.append(
            LongRunning("dmp-simulator", _simulator(settings.simulator_port, simulator_trust, dmp))
        )
    svc = Service(
        settings,
        title="Bureautique Santé — DMP connector",
        routers=[router],
        events=subscriptions(),
        indexes=repository.INDEXES,
        jobs=feeder.kinds(
            settings.job_attempts,
            settings.job_initial_backoff_seconds,
            settings.job_timeout_seconds,
        ),
        job_breakers={ENDPOINT: BreakerPolicy(failure_threshold=5, open_seconds=30.0)},
        tasks=tasks,
        jwks=jwks,
        store=store,
        standalone=standalone,
        on_stop=[close_dmp],
        state={
            "patients": patients,
            "dmp": dmp,
            "structures": structures,
            "feeder": feeder,
        },
    )
    if svc.jobs is not None:
        # A signed document should reach the DMP within a fraction of a second.
        svc.jobs.poll_interval = settings.job_poll_seconds
    return svc


def _simulator(port: int, trust: Path, dmp: DmpClient) -> Any:
    """The DMP simulator on its own port, served in-process (embedded platform): an uvicorn
    server started and stopped by hand, so it captures no signals of the platform's own."""

    async def run() -> None:
        import socket

        import uvicorn

        from bsante.dmp_connector.simulator.app import Simulator, build_app
        from bsante.dmp_connector.simulator.dataset import load

        # Compiling the schemas takes a moment: not on the event loop.
        sim = await asyncio.to_thread(Simulator, load(None), trust_file=trust)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            # Another platform (or test run) holds the port: any free one will do, the
            # connector is pointed at whichever was bound.
            log.warning("dmp_simulator_port_busy", port=port)
            sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(build_app(sim), access_log=False, log_config=None, lifespan="off")
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        bound = sock.getsockname()[1]
        base = f"http://127.0.0.1:{bound}"
        dmp.endpoints = Endpoints(f"{base}/repository", f"{base}/registry", f"{base}/admin")
        log.info("dmp_simulator_started", port=bound, not_checked=len(sim.missing))
        try:
            await asyncio.Event().wait()
        finally:
            server.should_exit = True
            await server.shutdown(sockets=[sock])
            sock.close()

    return run


def build_embedded(context: EmbeddedContext) -> Service[DmpConnectorSettings]:
    """In one process: documents and patient reached in-process, a demo PKI in the data
    directory, and the DMP simulator served beside the platform (port
    DMP_CONNECTOR_SIMULATOR_PORT, 8090; 0 picks a free one) unless the environment points the
    connector at another DMP (DMP_CONNECTOR_DMP_REPOSITORY_URL)."""
    secret = context.register_service_client("dmp-connector", list(SCOPES))
    demo = pki.ensure(context.data / "dmp-pki")
    env = DmpConnectorSettings()
    simulate = "dmp_repository_url" not in env.model_fields_set
    settings = env.model_copy(
        update={
            "store_url": context.store_url("dmp-connector"),
            "bus_url": context.bus_url,
            "documents_url": "http://documents",
            "patient_url": "http://patient",
            "identity_url": "http://identity",
            "service_token_url": "http://identity/oauth/token",
            "service_client_secret": SecretStr(secret),
            "signing_cert_file": env.signing_cert_file or str(demo.cert),
            "signing_key_file": env.signing_key_file or str(demo.key),
        }
    )
    return build(
        settings,
        jwks=context.jwks,
        documents_transport=context.transport("documents"),
        patient_transport=context.transport("patient"),
        token_transport=context.transport("identity"),
        simulator_trust=demo.ca_cert if simulate else None,
    )
