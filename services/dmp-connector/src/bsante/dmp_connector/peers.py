"""The platform services the connector reads: documents (the signed CDA), patient (the INS) and
identity (the national id of the acting structure, for the VIHF of a consultation).

Both are called with the connector's service token; a wrong answer is a value or a specific
error, never a crash of the job that asked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import httpx

from bsante.chassis.jobs import PermanentJobError
from bsante.chassis.service_client import ServiceAuthUnavailable, ServiceClient


class PeerUnavailable(ConnectionError):
    """A platform service could not answer now (unreachable, 5xx, no token): retry."""


class ClaimCheckFailed(PermanentJobError):
    """The artefact fetched is not the one the event announced (SHA-256 or size)."""


@dataclass(frozen=True)
class PatientIns:
    patient_id: str
    active: bool
    identity_status: str
    ins: str | None
    ins_oid: str | None
    dmp_opposition: bool


class Documents(Protocol):
    async def signed_cda(self, document_id: str) -> bytes | None: ...


class Patients(Protocol):
    async def ins(
        self, patient_id: str, *, structure_id: str, on_behalf_of: str
    ) -> PatientIns | None: ...


class Structures(Protocol):
    async def struct_id_nat(self, structure_id: str) -> str | None: ...


async def _get(
    client: ServiceClient, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    try:
        response = await client.get(path, headers=headers)
    except ServiceAuthUnavailable as error:
        raise PeerUnavailable(f"no service token ({type(error).__name__})") from None
    except httpx.HTTPError as error:
        raise PeerUnavailable(f"{client.base_url} unreachable ({type(error).__name__})") from None
    if response.status_code >= 500 or response.status_code in (401, 429):
        raise PeerUnavailable(f"{path.split('/')[1]} answered {response.status_code}")
    return response


class HttpDocuments:
    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def signed_cda(self, document_id: str) -> bytes | None:
        response = await _get(self.client, f"/internal/documents/{document_id}/cda")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PermanentJobError(f"DOCUMENTS_REFUSED: documents answered {response.status_code}")
        return response.content


class HttpPatients:
    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def ins(
        self, patient_id: str, *, structure_id: str, on_behalf_of: str
    ) -> PatientIns | None:
        response = await _get(
            self.client,
            f"/internal/patients/{patient_id}",
            {"X-Structure-Id": structure_id, "X-On-Behalf-Of": on_behalf_of},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PermanentJobError(f"PATIENT_REFUSED: patient answered {response.status_code}")
        body = response.json()
        ins = body.get("ins") or {}
        return PatientIns(
            patient_id=str(body["id"]),
            active=bool(body.get("active", True)),
            identity_status=str(body.get("identity_status", "provisoire")),
            ins=ins.get("matricule"),
            ins_oid=ins.get("oid"),
            dmp_opposition=bool(body.get("dmp_opposition", False)),
        )


class HttpStructures:
    """The StructIdNat (1 + FINESS) of a tenant structure, from identity's directory."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client
        # A structure's FINESS does not change under a running connector.
        self.known: dict[str, str] = {}

    async def struct_id_nat(self, structure_id: str) -> str | None:
        if structure_id in self.known:
            return self.known[structure_id]
        response = await _get(self.client, f"/internal/structures/{structure_id}")
        if response.status_code != 200:
            return None
        finess = response.json().get("finess")
        if not finess:
            return None
        self.known[structure_id] = f"1{finess}"
        return self.known[structure_id]


def check_claim(data: bytes, sha256: str, size: int) -> None:
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise ClaimCheckFailed(
            "HASH_MISMATCH: the CDA from documents does not match the signed event "
            f"(size {len(data)}, expected {size})"
        )
