"""The local API the web app calls on 127.0.0.1: pairing token, platform origin only.

Two locks: CORS names the platform's origin as the only one allowed, and every route but
`/health` wants the pairing token (`Authorization: Bearer <token>`; on the WebSocket, the
subprotocols `bsante.pairing, <token>`, since a browser cannot set headers there). A request
from a page of another origin is refused outright (403), whatever it carries: CORS alone does
not stop a "simple" cross-origin POST from being executed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends, FastAPI, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator, model_validator
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from bsante.card_bridge import cards
from bsante.card_bridge.agent import Bridge, PlatformRefused, ps_id_nat_of
from bsante.card_bridge.settings import CardBridgeSettings
from bsante.chassis.errors import install_problem_handlers, problem
from bsante.chassis.web import SecurityHeadersMiddleware

PAIRING_SUBPROTOCOL = "bsante.pairing"
# How card failures answer. 409: the card is not in a state to do it; 422: the card presented
# answers garbage or refuses (bad input from the workstation's side, not an agent fault).
CARD_STATUS: dict[type[cards.CardError], int] = {
    cards.WrongPin: 401,
    cards.PinBlocked: 423,
    cards.BadPin: 422,
    cards.CardRemoved: 409,
    cards.UnknownCard: 409,
    cards.MalformedResponse: 422,
    cards.UnexpectedStatus: 422,
}


def pairing_token(path: Path) -> str:
    """The workstation's pairing token, created at first start (readable by its user only)."""
    if path.exists():
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token + "\n")
    return token


class OriginGuard:
    """403 for any request whose Origin is not the platform's (before CORS and routing)."""

    def __init__(self, app: ASGIApp, origin: str) -> None:
        self.app = app
        self.origin = origin.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            origin = dict(scope.get("headers", [])).get(b"origin")
            if origin is not None and origin.decode("latin-1").rstrip("/") != self.origin:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4403})
                    return
                response = problem(403, "Requests from this origin are refused", kind="origin")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class TokenIn(BaseModel):
    access_token: str = Field(min_length=20, max_length=10_000)


class PinIn(BaseModel):
    pin: str = Field(min_length=1, max_length=16)
    reader: str | None = Field(default=None, max_length=200)


DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


class SignDigestIn(PinIn):
    """A digest for the CPS's signature key (PKCS#1 v1.5 over its DigestInfo)."""

    hash_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    digest: str = Field(min_length=1, max_length=200, description="Base64 of the digest")

    @field_validator("digest")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("not base64") from None
        return value

    @model_validator(mode="after")
    def _sized(self) -> SignDigestIn:
        if len(self.raw_digest) != DIGEST_SIZES[self.hash_algorithm]:
            raise ValueError(
                f"digest: a {self.hash_algorithm} digest has "
                f"{DIGEST_SIZES[self.hash_algorithm]} bytes"
            )
        return self

    @property
    def raw_digest(self) -> bytes:
        return base64.b64decode(self.digest)


def _chain_out(found: cards.CpsCertificates) -> list[str]:
    """The signature certificate, then its issuer (base64 DER)."""
    return [cards.CpsCertificates.b64(found.signature), cards.CpsCertificates.b64(found.issuer)]


def build_app(
    settings: CardBridgeSettings,
    *,
    token: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    expected = token or pairing_token(settings.pairing_file)
    bridge = Bridge(settings, transport=transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bridge.start()
        try:
            yield
        finally:
            await bridge.stop()

    app = FastAPI(title="Bureautique Santé card bridge", version="0.1.0", lifespan=lifespan)
    app.state.bridge = bridge
    install_problem_handlers(app)

    def paired(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), expected):
            raise _Unpaired()

    Paired = Depends(paired)

    @app.exception_handler(cards.CardError)
    async def card_error(_: Request, error: cards.CardError) -> JSONResponse:
        status = next((s for t, s in CARD_STATUS.items() if isinstance(error, t)), 409)
        extra = (
            [{"field": "pin", "message": str(error)}]
            if isinstance(error, cards.WrongPin | cards.BadPin)
            else []
        )
        response = problem(status, str(error), kind=error.kind, errors=extra)
        if isinstance(error, cards.WrongPin):
            response.headers["X-Pin-Tries-Left"] = str(error.tries_left)  # for the PIN pad
        return response

    @app.exception_handler(PlatformRefused)
    async def platform_refused(_: Request, error: PlatformRefused) -> JSONResponse:
        status = error.status if 400 <= error.status < 500 else 502
        return problem(status, str(error), kind="platform-refused")

    @app.exception_handler(httpx.HTTPError)
    async def platform_down(_: Request, error: httpx.HTTPError) -> JSONResponse:
        return problem(503, "The platform is unreachable", kind="platform-unreachable")

    @app.exception_handler(_Unpaired)
    async def unpaired(_: Request, error: _Unpaired) -> JSONResponse:
        return problem(
            401,
            "Pair this page with the card bridge first (its pairing token)",
            kind="unpaired",
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        watcher_error = bridge._watcher.error if bridge._watcher else None
        return {"status": "live" if watcher_error is None else "degraded", "pcsc": watcher_error}

    @app.get("/cards", dependencies=[Paired])
    async def list_cards() -> list[dict[str, Any]]:
        return [
            {"reader": s.reader, "card_kind": s.kind, "ps_id_nat": s.ps_id_nat, "error": s.error}
            for s in bridge.readers.values()
        ]

    @app.put("/session", dependencies=[Paired])
    async def hand_over(body: TokenIn) -> dict[str, Any]:
        """The web app's signed-in user: the agent posts card events with this token."""
        session = await bridge.adopt_token(body.access_token)
        return {"user_id": session.user_id, "acting_structure": session.acting_structure}

    @app.get("/session", dependencies=[Paired])
    async def who() -> dict[str, Any]:
        session = bridge.session
        if session is None:
            return {"signed_in": False}
        return {
            "signed_in": True,
            "user_id": session.user_id,
            "acting_structure": session.acting_structure,
            "by_card": session.signed_in_by_card,
        }

    @app.delete("/session", status_code=204, dependencies=[Paired])
    async def sign_out() -> None:
        bridge.session = None

    @app.post("/cps/login", dependencies=[Paired])
    async def cps_login(body: PinIn) -> dict[str, Any]:
        """PIN to the card, identity's challenge signed by it: the professional's tokens."""
        return await bridge.cps_login(body.pin, body.reader)

    @app.get("/cps/certificates", dependencies=[Paired])
    async def cps_certificates(reader: str | None = None) -> dict[str, Any]:
        """The certificates of the inserted CPS's signature key (what a signer embeds)."""
        used, found = await bridge.cps_certificates(reader)
        return {
            "reader": used,
            "ps_id_nat": ps_id_nat_of(found),
            "certificates": _chain_out(found),
        }

    @app.post("/cps/sign", dependencies=[Paired])
    async def cps_sign(body: SignDigestIn) -> dict[str, Any]:
        """The PIN to the card, then its signature key signs the digest (the documents
        service's `KeyHandle.sign` on a card): the signature and the certificate chain."""
        found, signature = await bridge.cps_sign(
            body.pin, body.raw_digest, body.hash_algorithm, body.reader
        )
        return {
            "hash_algorithm": body.hash_algorithm,
            "signature": base64.b64encode(signature).decode(),
            "ps_id_nat": ps_id_nat_of(found),
            "certificates": _chain_out(found),
        }

    @app.get("/cps/pin", dependencies=[Paired])
    async def pin_status(reader: str | None = None) -> dict[str, int]:
        return {"tries_left": await bridge.pin_tries_left(reader)}

    @app.websocket("/events")
    async def events(websocket: WebSocket) -> None:
        offered = [
            p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
        ]
        if (
            len(offered) != 2
            or offered[0] != PAIRING_SUBPROTOCOL
            or not secrets.compare_digest(offered[1], expected)
        ):
            await websocket.close(code=4401)
            return
        await websocket.accept(subprotocol=PAIRING_SUBPROTOCOL)
        queue = bridge.subscribe()
        try:
            for state in list(bridge.readers.values()):
                await websocket.send_json(
                    {"type": "card.present", "reader": state.reader, "card_kind": state.kind}
                )
            while True:
                getter = asyncio.ensure_future(queue.get())
                closed = asyncio.ensure_future(websocket.receive())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    getter.cancel()
                    message = closed.result()
                    if message["type"] == "websocket.disconnect":
                        return
                    continue
                closed.cancel()
                await websocket.send_json(getter.result())
        except WebSocketDisconnect:
            return
        finally:
            bridge.unsubscribe(queue)

    guarded: Any = CORSMiddleware(
        app,
        allow_origins=[settings.platform_origin.rstrip("/")],
        allow_methods=["GET", "PUT", "POST", "DELETE"],
        allow_headers=["authorization", "content-type"],
        expose_headers=["x-pin-tries-left"],
    )
    # The chassis's security headers (nosniff, no referrer, no framing) on every answer.
    app.state.asgi = SecurityHeadersMiddleware(OriginGuard(guarded, settings.platform_origin))
    return app


class _Unpaired(Exception):
    pass


def asgi(app: FastAPI) -> ASGIApp:
    """The app with its origin guard and CORS around it (what uvicorn serves)."""
    wrapped: ASGIApp = app.state.asgi
    return wrapped
