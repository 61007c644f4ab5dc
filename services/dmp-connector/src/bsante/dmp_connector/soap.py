"""SOAP 1.2 envelopes with WS-Addressing headers and a WS-Security header for the VIHF.

The signed VIHF is spliced into the envelope as the exact bytes that were signed: moving a
signed lxml element into another tree may rename its namespace prefixes and so break its
exclusive-c14n signature; bytes cannot move.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_MARK = "BSANTE-VIHF-PLACEHOLDER"


class SoapError(ValueError):
    """Not a SOAP 1.2 envelope."""


@dataclass(frozen=True)
class SoapFault(Exception):
    """A SOAP 1.2 Fault: `code` is Sender or Receiver (whose fault it is)."""

    code: str
    reason: str

    def __str__(self) -> str:
        return f"SOAP fault {self.code}: {self.reason}"


def envelope(
    body: etree._Element,
    *,
    action: str,
    to: str,
    assertion: bytes | None = None,
    message_id: str | None = None,
    relates_to: str | None = None,
) -> bytes:
    """The envelope bytes; `assertion` (signed SAML bytes) goes verbatim into wsse:Security."""
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    act = etree.SubElement(header, f"{{{WSA}}}Action")
    act.set(f"{{{SOAP12}}}mustUnderstand", "true")
    act.text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = message_id or f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    etree.SubElement(header, f"{{{WSA}}}To").text = to
    if assertion is not None:
        security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
        security.text = _MARK
    etree.SubElement(env, f"{{{SOAP12}}}Body").append(body)
    text = etree.tostring(env, xml_declaration=True, encoding="UTF-8")
    if assertion is not None:
        signed = assertion
        if signed.startswith(b"<?xml"):
            signed = signed[signed.index(b"?>") + 2 :].lstrip()
        text = text.replace(_MARK.encode(), signed, 1)
    return bytes(text)


@dataclass(frozen=True)
class Parsed:
    action: str
    message_id: str
    to: str
    header: etree._Element
    payload: etree._Element


def parse(data: bytes) -> Parsed:
    """The envelope's addressing headers and its body's first element."""
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as error:
        raise SoapError(f"not XML: {error}") from None
    if root.tag != f"{{{SOAP12}}}Envelope":
        raise SoapError(f"not a SOAP 1.2 envelope but {root.tag}")
    header = root.find(f"{{{SOAP12}}}Header")
    body = root.find(f"{{{SOAP12}}}Body")
    if body is None or len(body) == 0:
        raise SoapError("the envelope has no body content")
    payload = body[0]
    if payload.tag == f"{{{SOAP12}}}Fault":
        code = payload.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value") or ""
        reason = payload.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or ""
        raise SoapFault(code.rpartition(":")[2] or "Receiver", reason[:200])
    if header is None:
        header = etree.Element(f"{{{SOAP12}}}Header")

    def text(tag: str) -> str:
        return (header.findtext(f"{{{WSA}}}{tag}") or "").strip()

    return Parsed(text("Action"), text("MessageID"), text("To"), header, payload)


def fault(code: str, reason: str) -> bytes:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12})
    body = etree.SubElement(env, f"{{{SOAP12}}}Body")
    f = etree.SubElement(body, f"{{{SOAP12}}}Fault")
    etree.SubElement(
        etree.SubElement(f, f"{{{SOAP12}}}Code"), f"{{{SOAP12}}}Value"
    ).text = f"soap:{code}"
    r = etree.SubElement(etree.SubElement(f, f"{{{SOAP12}}}Reason"), f"{{{SOAP12}}}Text")
    r.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    r.text = reason
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


# No network, no entities: a message cannot make the parser fetch or expand anything.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
