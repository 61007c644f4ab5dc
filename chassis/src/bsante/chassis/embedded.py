"""What the embedded platform hands each service's `build_embedded`: one data directory, one
embedded log, and in-process links to the other services (their HTTP apps, identity's keys).

Links resolve when first used, so services can be built in any order.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bsante.chassis.auth import JwksSource
from bsante.chassis.service import Service


class EmbeddedContext:
    def __init__(self, data: Path) -> None:
        self.data = data.resolve()
        self.bus_url = f"embedded://{self.data}"
        self.services: dict[str, Service[Any]] = {}
        self._jwks: JwksSource | None = None
        # Service clients of the platform: name -> (secret, scopes), read by the token issuer
        # when it starts. Drawn afresh at each start and never written anywhere.
        self.service_clients: dict[str, tuple[str, tuple[str, ...]]] = {}

    def register_service_client(self, name: str, scopes: Sequence[str]) -> str:
        """A fresh client secret for service `name` with these scopes."""
        secret = secrets.token_urlsafe(32)
        self.service_clients[name] = (secret, tuple(scopes))
        return secret

    def store_url(self, name: str) -> str:
        """The SQLite file of one service."""
        return f"sqlite:///{self.data / (name + '.db')}"

    def blob_url(self, name: str) -> str:
        """The blob directory of one service (directories are never shared)."""
        return f"file://{self.data / 'blobs' / name}"

    def provide_jwks(self, source: JwksSource) -> None:
        """The token issuer (identity) offers its public keys to the other services."""
        self._jwks = source

    async def jwks(self) -> dict[str, Any]:
        """A `JwksSource` reading the issuer's keys in-process."""
        if self._jwks is None:
            raise RuntimeError("no service of the embedded platform provides token keys")
        return await self._jwks()

    def transport(self, name: str) -> httpx.AsyncBaseTransport:
        """An httpx transport reaching service `name`'s app in-process."""
        return _PeerTransport(self, name)


class _PeerTransport(httpx.AsyncBaseTransport):
    def __init__(self, context: EmbeddedContext, name: str) -> None:
        self._context = context
        self._name = name
        self._transport: httpx.ASGITransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            peer = self._context.services.get(self._name)
            if peer is None:
                raise httpx.ConnectError(f"no service {self._name!r} in the embedded platform")
            self._transport = httpx.ASGITransport(app=peer.app)
        return await self._transport.handle_async_request(request)
