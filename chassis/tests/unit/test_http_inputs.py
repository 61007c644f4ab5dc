"""Inputs the chassis takes from headers and free text before anything echoes or stores them."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from bsante.chassis import context
from bsante.chassis.http import RequestContextMiddleware, caller_id, client_address, parse_networks
from bsante.chassis.text import SafeMultilineText, SafeText

LOOPBACK = parse_networks(["127.0.0.1/32", "::1/128"])
PROXIES = parse_networks(["10.0.0.0/8"])


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("203.0.113.7", "198.51.100.1", ()) == "203.0.113.7"
    assert client_address("203.0.113.7", "198.51.100.1", LOOPBACK) == "203.0.113.7"
    assert client_address("127.0.0.1", "198.51.100.1", LOOPBACK) == "198.51.100.1"


def test_the_client_is_the_first_untrusted_hop_from_the_right() -> None:
    # The caller wrote the leftmost entry itself: it is not believed.
    forwarded = "1.2.3.4, 198.51.100.1, 10.0.0.5"
    assert client_address("10.0.0.9", forwarded, PROXIES) == "198.51.100.1"


@pytest.mark.parametrize(
    "forwarded", ["not-an-ip", "1.2.3.4<script>", "9" * 20_000, ", , ,"], ids=str.__len__
)
def test_a_malformed_or_huge_forwarded_for_leaves_the_peer(forwarded: str) -> None:
    address = client_address("127.0.0.1", forwarded, LOOPBACK)
    assert address == "127.0.0.1"


def test_request_ids_have_a_bounded_charset() -> None:
    assert caller_id("web-1b2c:3.4_5") == "web-1b2c:3.4_5"
    for bad in ("x" * 129, "a b", "a\nb", "", "é", None):
        assert caller_id(bad) is None


async def test_the_middleware_records_the_validated_address_and_id() -> None:
    seen: dict[str, str | None] = {}
    app = FastAPI()

    @app.get("/")
    async def read() -> dict[str, str]:
        seen["client"] = context.client_address.get()
        seen["cid"] = context.correlation_id.get()
        return {}

    wrapped = RequestContextMiddleware(
        app, service="t", max_body_bytes=1000, trusted_proxies=["127.0.0.1"]
    )
    transport = httpx.ASGITransport(app=wrapped, client=("127.0.0.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/", headers={"X-Forwarded-For": "192.0.2.4", "X-Correlation-Id": "z" * 5000}
        )
    assert seen["client"] == "192.0.2.4"
    assert seen["cid"] == response.headers["x-correlation-id"] and len(seen["cid"] or "") == 36


class Note(BaseModel):
    title: SafeText
    body: SafeMultilineText


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x7f", "\x85", "\u202a", "\u202e", "\u2069"])
def test_safe_text_refuses_controls_and_bidi(bad: str) -> None:
    with pytest.raises(ValidationError) as error:
        Note(title=f"a{bad}b", body="ok")
    assert error.value.errors()[0]["loc"] == ("title",)
    with pytest.raises(ValidationError):
        Note(title="ok", body=f"a{bad}b")


def test_safe_text_keeps_ordinary_text_and_multiline_keeps_line_breaks() -> None:
    note = Note(title="Mme Ève L'Hôpital — 2ᵉ étage", body="ligne 1\r\nligne 2\tfin")
    assert note.title.startswith("Mme Ève")
    with pytest.raises(ValidationError):
        Note(title="a\nb", body="")
