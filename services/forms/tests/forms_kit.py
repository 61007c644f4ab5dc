"""Helpers of the forms service tests: the forms service alone, with a fake patient directory
in place of the patient service, answers that score known results, and a client wrapper."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from bsante.chassis.auth import SigningKey, issue_token
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.service import Service
from bsante.contracts.envelope import Envelope
from bsante.forms.app import build
from bsante.forms.engine import PatientFacts
from bsante.forms.settings import FormsSettings

# Codes COH ORI TOI HAB ALI ELI TRA DPI = CCBBBBBB: group A scores 3420, rang 3, GIR 2.
AGGIR_GIR2: dict[str, Any] = {
    "COH": {"communication": "C", "comportement": "C"},
    "ORI": {"temps": "C", "espace": "C"},
    "TOI": {"haut": "B", "bas": "B"},
    "HAB": {"haut": "B", "moyen": "B", "bas": "B"},
    "ALI": {"se_servir": "B", "manger": "B"},
    "ELI": {"urinaire": "B", "fecale": "B"},
    "TRA": "B",
    "DPI": "B",
    "DPE": "C",
    "COM": "A",
}
# Everything done alone (all A, here partly through the adverbs): rang 13, GIR 6.
ALL_YES = {"S": True, "T": True, "C": True, "H": True}
AGGIR_GIR6: dict[str, Any] = {
    "COH": {"communication": "A", "comportement": ALL_YES},
    "ORI": {"temps": "A", "espace": "A"},
    "TOI": {"haut": "A", "bas": "A"},
    "HAB": {"haut": "A", "moyen": "A", "bas": "A"},
    "ALI": {"se_servir": "A", "manger": "A"},
    "ELI": {"urinaire": "A", "fecale": "A"},
    "TRA": ALL_YES,
    "DPI": "A",
    "DPE": "A",
    "COM": "A",
}
PATIENT: dict[str, Any] = {
    "birth_name": "DUPONT",
    "birth_given_names": "Marie",
    "sex": "F",
    "birth_date": "1941-03-02",
}


@dataclass
class FakePatients:
    """The PatientDirectory port, answering from memory as the patient service would: a
    patient of another structure is unknown."""

    known: dict[str, tuple[str, PatientFacts]] = field(default_factory=dict)

    def add(self, structure_id: str, **traits: Any) -> str:
        pid = str(uuid.uuid4())
        given = traits.get("birth_given_names")
        self.known[pid] = (
            structure_id,
            PatientFacts(
                id=pid,
                structure_id=structure_id,
                birth_name=traits.get("birth_name"),
                first_name=given.split()[0] if given else None,
                used_name=traits.get("used_name"),
                sex=traits.get("sex"),
                birth_date=date.fromisoformat(traits["birth_date"])
                if traits.get("birth_date")
                else None,
                phone=traits.get("phone"),
                mobile=traits.get("mobile"),
                address=traits.get("address"),
                attending_physician=traits.get("attending_physician"),
            ),
        )
        return pid

    async def find(
        self, patient_id: str, *, authorization: str, structure_id: str
    ) -> PatientFacts | None:
        found = self.known.get(patient_id)
        return found[1] if found is not None and found[0] == structure_id else None


@dataclass
class Forms:
    """Drives the forms API (mounted under /api/forms as behind the gateway)."""

    client: httpx.AsyncClient
    service: Service
    patients: FakePatients
    key: SigningKey
    data: Path

    def headers(
        self,
        *,
        roles: Sequence[str] = ("medecin",),
        structure: str = "demo-ehpad",
        user: str = "user-dr-house",
    ) -> dict[str, str]:
        """A token for a user holding `roles` in `structure`."""
        token = issue_token(
            self.key,
            subject=user,
            structures=[structure],
            roles={structure: list(roles)},
            profession=None,
            issuer="bsante-identity",
            audience="bsante",
            ttl_seconds=900,
        )
        return {"Authorization": f"Bearer {token}", "X-Structure-Id": structure}

    async def patient(self, headers: dict[str, str], **traits: Any) -> str:
        """A patient known to the headers' structure."""
        return self.patients.add(headers["X-Structure-Id"], **{**PATIENT, **traits})

    async def submit(
        self,
        headers: dict[str, str],
        patient_id: str,
        form_id: str,
        answers: dict[str, Any],
        *,
        complete: bool = False,
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/forms/patients/{patient_id}/submissions",
            json={"form_id": form_id, "answers": answers, "complete": complete},
            headers=headers,
        )

    async def events(self, topic: str) -> list[Envelope]:
        bus = EmbeddedBus(self.data)
        await bus.start()
        try:
            return [Envelope.from_json(m.value) for m in await bus.read(topic)]
        finally:
            await bus.stop()

    async def submission_count(self) -> int:
        return await self.service.store.count("submissions")


@asynccontextmanager
async def forms_alone(data: Path) -> AsyncIterator[Forms]:
    """The forms service alone on SQLite and the embedded bus, with a fake patient port."""
    data = data.resolve()
    key = SigningKey.generate()

    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    patients = FakePatients()
    service = build(
        FormsSettings(store_url=f"sqlite:///{data / 'forms.db'}", bus_url=f"embedded://{data}"),
        jwks=jwks,
        patients=patients,
    )
    app = Starlette(routes=[Mount("/api/forms", app=service.app)])
    await service.start()
    try:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://forms") as client:
            yield Forms(client, service, patients, key, data)
    finally:
        await service.stop()
