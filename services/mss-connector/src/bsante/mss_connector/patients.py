"""The patient service as the connector sees it: the structure's record whose identity is
qualifiée with a received document's INS (its `/internal/...` route, with the service token)."""

from __future__ import annotations

from typing import Protocol

import httpx

from bsante.chassis.service_client import ServiceTokenProvider

# The INS OIDs (NIR, NIA, test NIR): a patientId under another authority is a local id.
INS_OIDS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10"})


def ins_of(cx: str | None) -> tuple[str, str] | None:
    """(matricule, oid) of an HL7 CX `matricule^^^&oid&ISO` naming an INS, else None."""
    if not cx:
        return None
    parts = cx.split("^")
    if len(parts) < 4:
        return None
    authority = parts[3].split("&")
    oid = authority[1] if len(authority) > 1 else ""
    matricule = parts[0].strip()
    if oid not in INS_OIDS or not matricule.isdigit() or len(matricule) not in (13, 15):
        return None
    return matricule, oid


class PatientsPort(Protocol):
    async def by_ins(self, structure_id: str, matricule: str, oid: str) -> str | None:
        """The id of the structure's qualifiée record with this INS, or None."""


class HttpPatients:
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

    async def by_ins(self, structure_id: str, matricule: str, oid: str) -> str | None:
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as http:
            for attempt in range(2):
                token = await self.tokens.token()
                response = await http.get(
                    f"{self.base_url}/internal/patients/by-ins/{matricule}",
                    params={"oid": oid},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Structure-Id": structure_id,
                        "X-On-Behalf-Of": "mss-connector",
                    },
                )
                if response.status_code != 401 or attempt:
                    break
                self.tokens.invalidate(token)
        if response.status_code == 200:
            return str(response.json()["id"])
        if response.status_code == 404:
            return None
        raise RuntimeError(f"patient answered {response.status_code}")
