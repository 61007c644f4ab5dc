"""Helpers of the forms service tests: answers that score known results, and a client wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from kit import Platform  # type: ignore[import-not-found]

from bsante.chassis.auth import issue_token
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts.envelope import Envelope

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


@dataclass
class Forms:
    """Drives the forms API of the embedded platform, as professionals of the demo structures."""

    platform: Platform

    @property
    def client(self) -> httpx.AsyncClient:
        return self.platform.client

    def headers(
        self,
        *,
        roles: Sequence[str] = ("medecin",),
        structure: str = "demo-ehpad",
        user: str = "user-dr-house",
    ) -> dict[str, str]:
        """A token signed by identity's key, for a user holding `roles` in `structure`."""
        key = self.platform.services["identity"].app.state.signing_keys[0]
        token = issue_token(
            key,
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
        # Sent explicitly: the reworked patient schema wants them present (null is fine).
        traits = {"used_name": None, "used_first_name": None, **traits}
        response = await self.platform.create_patient(headers, **traits)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

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
        bus = EmbeddedBus(self.platform.data)
        await bus.start()
        try:
            return [Envelope.from_json(m.value) for m in await bus.read(topic)]
        finally:
            await bus.stop()

    async def submission_count(self) -> int:
        return await self.platform.services["forms"].store.count("submissions")
