"""INSi adapters used by the service: the simulator (runs here) and the SOAP client's shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape

from bsante.patient.identity.insi import (
    ACTION_SEARCH_BY_TRAITS,
    ACTION_SEARCH_BY_VITALE,
    InsiIdentity,
    InsiResponse,
    InsiSimulator,
    SearchByTraits,
    SearchByVitale,
    SimulatedPerson,
    VitaleLink,
)
from bsante.patient.identity.nir import Ins, InsOid
from bsante.patient.identity.traits import Sex
from bsante.patient.settings import PatientSettings

DEMO_DATASET = "insi_demo.json"


class InsiUnavailableError(Exception):
    """INSi cannot be called (not configured, transport missing, service down)."""


class InsiGateway(Protocol):
    """Asynchronous port to INSi: the real call goes over the network."""

    async def search_by_traits(self, request: SearchByTraits) -> InsiResponse: ...

    async def search_by_vitale(self, request: SearchByVitale) -> InsiResponse: ...


def people_from_json(data: dict[str, Any]) -> list[SimulatedPerson]:
    """Dataset format: {"people": [{matricule, oid, birth_name, given_names, sex, birth_date,
    birth_place, historical: [{matricule, oid}], vitale: [{holder_nir, birth_rank}]}]}."""
    people = []
    for item in data["people"]:
        identity = InsiIdentity(
            ins=Ins(item["matricule"], InsOid(item["oid"])),
            birth_name=item["birth_name"],
            given_names=item["given_names"],
            sex=Sex(item["sex"]),
            birth_date_raw=item["birth_date"],
            birth_place=item["birth_place"],
            historical_ins=tuple(
                Ins(h["matricule"], InsOid(h["oid"])) for h in item.get("historical", ())
            ),
        )
        links = tuple(
            VitaleLink(v["holder_nir"], str(v.get("birth_rank", "1")))
            for v in item.get("vitale", ())
        )
        people.append(SimulatedPerson(identity=identity, vitale=links))
    return people


def load_dataset(path: str = "") -> list[SimulatedPerson]:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files(__package__).joinpath(DEMO_DATASET).read_text(encoding="utf-8")
    return people_from_json(json.loads(text))


class SimulatedInsi:
    """The in-process simulator behind the async port (answers and faults as INSi would)."""

    def __init__(self, people: Sequence[SimulatedPerson]) -> None:
        self.simulator = InsiSimulator(people)

    async def search_by_traits(self, request: SearchByTraits) -> InsiResponse:
        return self.simulator.search_by_traits(request)

    async def search_by_vitale(self, request: SearchByVitale) -> InsiResponse:
        return self.simulator.search_by_vitale(request)


class SoapInsi:
    """Shape of the real INSi client (SOAP 1.2, CNAM ServiceIdentiteCertifiee 1.0.0).

    Not usable yet: a real call needs the establishment's authentication certificate, a
    VIHF-like context header and the CNAM's LPS agreement. It builds the request bodies and
    refuses to call; the simulator is what runs in this repository.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    @staticmethod
    def body(request: SearchByTraits | SearchByVitale) -> tuple[str, str]:
        """(SOAPAction, body) of the request."""
        if isinstance(request, SearchByTraits):
            parts = [
                ("NomNaissance", request.birth_name),
                ("Prenom", request.given_names),
                ("Sexe", request.sex),
                ("DateNaissance", request.birth_date),
                ("LieuNaissance", request.birth_place),
            ]
            tag, ns, action = "RECSANSVITALE", "INSiRecSans", ACTION_SEARCH_BY_TRAITS
        else:
            parts = [
                ("MatriculeIndividu", request.beneficiary_nir),
                ("NomNaissance", request.birth_name),
                ("MatriculeOD", request.holder_nir),
                ("DateNaissance", request.birth_date),
                ("RangNaissance", request.birth_rank),
            ]
            tag, ns, action = "RECVITALE", "INSiRecVit", ACTION_SEARCH_BY_VITALE
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in parts if v)
        return action, f'<{tag} xmlns="http://www.cnamts.fr/{ns}">{inner}</{tag}>'

    async def _call(self, request: SearchByTraits | SearchByVitale) -> InsiResponse:
        if not self.endpoint:
            raise InsiUnavailableError("INSi is not configured (PATIENT_INSI_ENDPOINT is empty)")
        self.body(request)
        raise InsiUnavailableError(
            "the INSi SOAP transport is not implemented (establishment certificate needed)"
        )

    async def search_by_traits(self, request: SearchByTraits) -> InsiResponse:
        return await self._call(request)

    async def search_by_vitale(self, request: SearchByVitale) -> InsiResponse:
        return await self._call(request)


def insi_from_settings(settings: PatientSettings) -> InsiGateway:
    if settings.insi_mode == "soap":
        return SoapInsi(settings.insi_endpoint)
    return SimulatedInsi(load_dataset(settings.insi_dataset))
