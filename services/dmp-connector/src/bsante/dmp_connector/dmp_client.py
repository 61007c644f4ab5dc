"""The DMP over HTTP: SOAP 1.2 + WS-Addressing + VIHF, MTOM for documents.

Errors say whose fault it is: `DmpUnavailable` (unreachable, 5xx, timeout, an answer that is
not SOAP, a Receiver fault) is worth retrying; `DmpRefused` (a Sender fault, a 4xx) is not.
A RegistryResponse of Failure is an answer, returned as a value.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from lxml import etree

from bsante.chassis.jobs import PermanentJobError
from bsante.dmp_connector import mtom, soap, vihf, xds


class DmpUnavailable(ConnectionError):
    """The DMP could not be reached or did not answer properly: retry later."""


class DmpRefused(PermanentJobError):
    """The DMP refused the request itself (SOAP Sender fault, 4xx): retrying cannot help."""


@dataclass(frozen=True)
class Endpoints:
    repository: str
    registry: str
    admin: str


@dataclass(frozen=True)
class Answer:
    payload: etree._Element
    attachments: dict[str, mtom.Part]


class DmpClient:
    def __init__(
        self,
        endpoints: Endpoints,
        key: vihf.SigningKey,
        software: vihf.Software,
        *,
        timeout: float = 20.0,
        tls_cert: tuple[str, str] | None = None,
        verify: str | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.key = key
        self.software = software
        self._http = httpx.AsyncClient(
            timeout=timeout, cert=tls_cert, verify=verify, transport=transport
        )

    async def close(self) -> None:
        await self._http.aclose()

    def _vihf(self, actor: vihf.Actor, ins: str, ins_oid: str) -> bytes:
        return vihf.signed_assertion(actor, self.software, self.key, ins=ins, ins_oid=ins_oid)

    async def call(
        self,
        url: str,
        action: str,
        payload: etree._Element,
        actor: vihf.Actor,
        *,
        ins: str,
        ins_oid: str,
        attachments: list[mtom.Part] | None = None,
    ) -> Answer:
        envelope = soap.envelope(
            payload,
            action=action,
            to=url,
            assertion=self._vihf(actor, ins, ins_oid),
            message_id=f"urn:uuid:{uuid.uuid4()}",
        )
        if attachments is not None:
            body, content_type = mtom.encode(envelope, attachments, action)
        else:
            body = envelope
            content_type = f'application/soap+xml; charset=UTF-8; action="{action}"'
        try:
            response = await self._http.post(
                url, content=body, headers={"Content-Type": content_type}
            )
        except httpx.TimeoutException as error:
            raise DmpUnavailable(f"DMP timeout ({type(error).__name__})") from None
        except httpx.HTTPError as error:
            raise DmpUnavailable(f"DMP unreachable ({type(error).__name__})") from None
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Answer:
        header = response.headers.get("content-type", "")
        try:
            if header.lower().startswith("multipart/related"):
                message = mtom.decode(response.content, header)
            else:
                message = mtom.MtomMessage(response.content)
            parsed = soap.parse(message.envelope)
        except soap.SoapFault as fault:
            if fault.code == "Sender" and response.status_code < 500:
                raise DmpRefused(f"SOAPFault: {fault.reason}") from None
            raise DmpUnavailable(f"DMP fault {fault.code}: {fault.reason[:120]}") from None
        except (mtom.MtomError, soap.SoapError) as error:
            if response.status_code >= 500:
                raise DmpUnavailable(f"DMP answered HTTP {response.status_code}") from None
            raise DmpUnavailable(
                f"DMP answer is not SOAP (HTTP {response.status_code}: {str(error)[:80]})"
            ) from None
        if response.status_code >= 500:
            raise DmpUnavailable(f"DMP answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise DmpRefused(f"HTTPError: DMP answered {response.status_code}")
        return Answer(parsed.payload, message.attachments)

    # -- transactions ---------------------------------------------------------------------

    async def provide_and_register(
        self,
        actor: vihf.Actor,
        ins: str,
        ins_oid: str,
        request: etree._Element,
        document: mtom.Part,
    ) -> xds.RegistryResponse:
        answer = await self.call(
            self.endpoints.repository,
            xds.ITI41,
            request,
            actor,
            ins=ins,
            ins_oid=ins_oid,
            attachments=[document],
        )
        return _registry(answer.payload)

    async def update(
        self, actor: vihf.Actor, ins: str, ins_oid: str, request: etree._Element
    ) -> xds.RegistryResponse:
        answer = await self.call(
            self.endpoints.registry, xds.ITI57, request, actor, ins=ins, ins_oid=ins_oid
        )
        return _registry(answer.payload)

    async def query(
        self, actor: vihf.Actor, ins: str, ins_oid: str, request: etree._Element
    ) -> tuple[xds.RegistryResponse, list[xds.EntryView]]:
        answer = await self.call(
            self.endpoints.registry, xds.ITI18, request, actor, ins=ins, ins_oid=ins_oid
        )
        return _registry(answer.payload), xds.entries(answer.payload)

    async def retrieve(
        self, actor: vihf.Actor, ins: str, ins_oid: str, repository_id: str, unique_id: str
    ) -> tuple[xds.RegistryResponse, bytes | None, str]:
        answer = await self.call(
            self.endpoints.repository,
            xds.ITI43,
            xds.retrieve(repository_id, unique_id),
            actor,
            ins=ins,
            ins_oid=ins_oid,
        )
        status = _registry(answer.payload)
        item = answer.payload.find(f"{{{xds.XDSB}}}DocumentResponse")
        if item is None:
            return status, None, ""
        mime = item.findtext(f"{{{xds.XDSB}}}mimeType") or "application/octet-stream"
        include = item.find(f"{{{xds.XDSB}}}Document/{{{mtom.XOP_NS}}}Include")
        if include is None:
            raise DmpUnavailable("ITI-43 answer without an xop:Include")
        part = answer.attachments.get(include.get("href", "").removeprefix("cid:"))
        if part is None:
            raise DmpUnavailable("ITI-43 answer lacks the document's MIME part")
        return status, part.body, mime

    async def admin(
        self, actor: vihf.Actor, ins: str, ins_oid: str, operation: str, **attributes: str
    ) -> etree._Element:
        ns = "urn:bsante:dmp:admin:1"
        payload = etree.Element(f"{{{ns}}}{operation}", nsmap={"adm": ns}, **attributes)
        answer = await self.call(
            self.endpoints.admin, f"{ns}:{operation}", payload, actor, ins=ins, ins_oid=ins_oid
        )
        return answer.payload


def _registry(payload: etree._Element) -> xds.RegistryResponse:
    try:
        return xds.parse_registry_response(payload)
    except ValueError as error:
        raise DmpUnavailable(f"DMP answer has no RegistryResponse ({str(error)[:80]})") from None
