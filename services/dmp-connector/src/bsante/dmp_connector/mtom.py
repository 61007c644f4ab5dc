"""MTOM/XOP `multipart/related` messages: written byte by byte, parsed back the same way.

The standard library's email generator rewrites line endings in binary parts, and zeep sends
no MTOM: the parts are framed here directly (RFC 2387, XOP), CRLF-delimited, binary untouched.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import unquote

from lxml import etree

XOP_NS = "http://www.w3.org/2004/08/xop/include"
SOAP12_TYPE = "application/soap+xml"
_PARAM = re.compile(r';\s*([A-Za-z-]+)\s*=\s*("([^"]*)"|[^;\s]+)')


class MtomError(ValueError):
    """The bytes are not a well-formed multipart/related message."""


@dataclass(frozen=True)
class Part:
    content_id: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class MtomMessage:
    """The SOAP envelope (root part) and the binary attachments, by Content-ID."""

    envelope: bytes
    attachments: dict[str, Part] = field(default_factory=dict)
    action: str = ""


def content_type(boundary: str, action: str, start: str = "<root.message@bsante>") -> str:
    return (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="{start}"; start-info="{SOAP12_TYPE}"; action="{action}"'
    )


def encode(envelope: bytes, attachments: list[Part], action: str) -> tuple[bytes, str]:
    """The body and its Content-Type header."""
    boundary = "MIMEBoundary_" + secrets.token_hex(16)
    while any(boundary.encode() in p.body for p in attachments) or boundary.encode() in envelope:
        boundary = "MIMEBoundary_" + secrets.token_hex(16)
    start = "root.message@bsante"
    out = bytearray()
    out += f"--{boundary}\r\n".encode()
    out += (
        f'Content-Type: application/xop+xml; charset=UTF-8; type="{SOAP12_TYPE}"; '
        f'action="{action}"\r\n'
    ).encode()
    out += b"Content-Transfer-Encoding: binary\r\n"
    out += f"Content-ID: <{start}>\r\n\r\n".encode()
    out += envelope
    for part in attachments:
        out += f"\r\n--{boundary}\r\n".encode()
        out += f"Content-Type: {part.content_type}\r\n".encode()
        out += b"Content-Transfer-Encoding: binary\r\n"
        out += f"Content-ID: <{part.content_id}>\r\n\r\n".encode()
        out += part.body
    out += f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), content_type(boundary, action, f"<{start}>")


def params(header: str) -> dict[str, str]:
    """The parameters of a Content-Type header value, lower-cased names."""
    return {
        m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2)
        for m in _PARAM.finditer(header)
    }


def decode(body: bytes, header: str) -> MtomMessage:
    """Parse a multipart/related body; the root part is `start`, else the first part."""
    media = header.split(";", 1)[0].strip().lower()
    if media != "multipart/related":
        raise MtomError(f"not multipart/related but {media or 'nothing'}")
    values = params(header)
    boundary = values.get("boundary")
    if not boundary:
        raise MtomError("no boundary in Content-Type")
    delimiter = b"--" + boundary.encode()
    if not body.startswith(delimiter):
        # A preamble is allowed before the first delimiter (after a CRLF).
        first = body.find(b"\r\n" + delimiter)
        if first < 0:
            raise MtomError("no part delimiter in the body")
        body = body[first + 2 :]
    chunks = body.split(b"\r\n" + delimiter)
    parts: list[Part] = []
    closed = False
    for index, chunk in enumerate(chunks):
        if index == 0:
            chunk = chunk[len(delimiter) :]
        if chunk.startswith(b"--"):
            closed = True
            break
        if not chunk.startswith(b"\r\n"):
            raise MtomError("a part delimiter is not followed by a line break")
        head_end = chunk.find(b"\r\n\r\n", 2)
        if head_end < 0:
            raise MtomError("a part has no header end")
        headers: dict[str, str] = {}
        for line in chunk[2:head_end].split(b"\r\n"):
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise MtomError("a part header line has no colon")
            headers[name.strip().lower()] = value.strip()
        encoding = headers.get("content-transfer-encoding", "binary").lower()
        if encoding not in ("binary", "8bit", "7bit"):
            raise MtomError(f"unsupported transfer encoding {encoding}")
        content_id = headers.get("content-id", "").strip("<>")
        parts.append(Part(content_id, headers.get("content-type", ""), chunk[head_end + 4 :]))
    if not closed:
        raise MtomError("the message is cut: no closing delimiter")
    if not parts:
        raise MtomError("no part")
    start = values.get("start", "").strip("<>")
    root = next((p for p in parts if start and p.content_id == start), parts[0])
    attachments = {p.content_id: p for p in parts if p is not root}
    return MtomMessage(root.body, attachments, params(root.content_type).get("action", ""))


def resolve_xop(element: etree._Element, attachments: dict[str, Part]) -> list[str]:
    """Replace each `xop:Include` by the base64 text of the part it names (the XOP infoset,
    which is what the schema describes); the Content-IDs not found are returned."""
    missing: list[str] = []
    for include in list(element.iter(f"{{{XOP_NS}}}Include")):
        href = include.get("href", "")
        cid = href.removeprefix("cid:")
        part = attachments.get(unquote(cid))
        parent = include.getparent()
        if part is None or parent is None:
            missing.append(cid)
            continue
        parent.remove(include)
        parent.text = base64.b64encode(part.body).decode("ascii")
    return missing
