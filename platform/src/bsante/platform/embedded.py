"""Compose the services of the manifest and the gateway on SQLite files and the embedded log.

Each service of kind `service` in `services.toml` is built by `<module>.app.build_embedded`,
which receives the shared `EmbeddedContext`; nothing here names a service.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bsante.chassis.embedded import EmbeddedContext
from bsante.chassis.service import Service
from bsante.contracts.manifest import SOURCE, Manifest, ManifestError, load
from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings

Builder = Callable[[EmbeddedContext], Service[Any]]

# The usual origins of a front-end development server (Vite, Create React App, Next.js).
DEV_ORIGINS = [
    f"http://{host}:{port}" for port in (3000, 5173, 8080) for host in ("localhost", "127.0.0.1")
]
# A development proxy on the same machine may forward requests with X-Forwarded-For.
LOOPBACK = ["127.0.0.1/32", "::1/128"]


def build_services(data: Path, manifest: Manifest | None = None) -> dict[str, Service[Any]]:
    return build_context(data, manifest).services


def build_context(data: Path, manifest: Manifest | None = None) -> EmbeddedContext:
    """The services of the manifest built on one context (its log, its links, their keys)."""
    context = EmbeddedContext(data)
    for entry in (manifest or load()).of_kind("service"):
        module = entry.import_module("app")
        build: Builder | None = vars(module).get("build_embedded")
        if not callable(build):
            raise ManifestError(
                f"{SOURCE}: service {entry.name!r}: {module.__name__} has no "
                "build_embedded(context) function"
            )
        service = build(context)
        if service.name != entry.name:
            raise ManifestError(
                f"{SOURCE}: service {entry.name!r} is built as {service.name!r} "
                f"(its settings' service_name)"
            )
        context.services[entry.name] = service
    return context


def build_platform(
    data: Path,
    settings: GatewaySettings | None = None,
    on_started: Callable[[], None] | None = None,
) -> FastAPI:
    """The gateway over every service, with the live event stream on the embedded log;
    `on_started()` once every service has started."""
    context = build_context(data)
    return build_embedded(
        settings or demo_gateway_settings(),
        context.services,
        jwks=context.jwks,
        bus_url=context.bus_url,
        on_started=on_started,
    )


def demo_gateway_settings() -> GatewaySettings:
    """The gateway's settings, with the demo's defaults where the environment sets none
    (GATEWAY_CORS_ORIGINS, GATEWAY_TRUSTED_PROXIES)."""
    settings = GatewaySettings()
    defaults = {"cors_origins": DEV_ORIGINS, "trusted_proxies": LOOPBACK}
    return settings.model_copy(
        update={k: v for k, v in defaults.items() if k not in settings.model_fields_set}
    )
