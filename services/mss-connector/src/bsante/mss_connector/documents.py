"""The documents service as the connector sees it: signed artefacts to fetch, received documents
to attach (its `/internal/...` routes, with the connector's service token)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

import httpx

from bsante.chassis.jobs import PermanentJobError
from bsante.chassis.service_client import ServiceTokenProvider


class DocumentsPort(Protocol):
    async def fetch(self, document_id: str, artefact: str, sha256: str) -> bytes:
        """The `cda` or `pdf` bytes, checked against the SHA-256 the event carried."""

    async def attach(self, patient_id: str, content: bytes, metadata: dict[str, Any]) -> str:
        """Attach a received document to the patient; the documents service's id for it."""


class ArtefactMismatch(PermanentJobError):
    """The bytes served differ from the event's hash (a wrong version, or tampering)."""


class HttpDocuments:
    def __init__(
        self,
        base_url: str,
        tokens: ServiceTokenProvider,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.transport = transport

    async def _request(
        self,
        method: str,
        path: str,
        extra_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as http:
            for attempt in range(2):
                token = await self.tokens.token()
                response = await http.request(
                    method,
                    f"{self.base_url}{path}",
                    headers={"Authorization": f"Bearer {token}", **(extra_headers or {})},
                    **kwargs,
                )
                if response.status_code != 401 or attempt:
                    return response
                self.tokens.invalidate(token)
        raise AssertionError("unreachable")

    async def fetch(self, document_id: str, artefact: str, sha256: str) -> bytes:
        response = await self._request("GET", f"/internal/documents/{document_id}/{artefact}")
        if response.status_code == 404:
            raise PermanentJobError(f"documents: no {artefact} for the document")
        if response.status_code >= 400:
            # 5xx and 429 are worth a retry; the job's policy retries any other error.
            raise RuntimeError(f"documents answered {response.status_code}")
        content = response.content
        if hashlib.sha256(content).hexdigest() != sha256:
            raise ArtefactMismatch(f"{artefact} differs from the signed artefact's hash")
        return content

    async def attach(self, patient_id: str, content: bytes, metadata: dict[str, Any]) -> str:
        metadata = dict(metadata)
        # The documents service attaches it in the mailbox's structure (a header, not metadata).
        structure_id = str(metadata.pop("structure_id"))
        response = await self._request(
            "POST",
            f"/internal/patients/{patient_id}/received-documents",
            extra_headers={"X-Structure-Id": structure_id},
            files={
                "file": ("document", content, metadata.get("media_type") or "application/xml"),
                "metadata": (None, json.dumps(metadata), "application/json"),
            },
        )
        if response.status_code in (200, 201):
            return str(response.json()["document_id"])
        if 400 <= response.status_code < 500 and response.status_code not in (401, 408, 429):
            raise PermanentJobError(f"documents refused the attachment: {response.status_code}")
        raise RuntimeError(f"documents answered {response.status_code}")
