"""What the documents service asks the other services when a document is drafted: the patient
record (patient), the author and the structure (identity's directory), the latest form results
(forms). Ports, their facts, and their HTTP adapters (service token, user named in headers).

Each peer applies its own tenancy rule and audits the read as the documents service's, on
behalf of the user; in the embedded platform the transports reach the peers in-process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import httpx
import structlog

from bsante.chassis.errors import Unavailable
from bsante.chassis.service_client import ServiceAuthUnavailable, ServiceClient
from bsante.documents import cda

log = structlog.get_logger(__name__)


class PeerUnavailable(Unavailable):
    kind = "upstream-down"


@dataclass(frozen=True)
class PatientRecordFacts:
    id: str
    structure_id: str
    birth_name: str
    birth_given_names: str
    first_given_name: str
    sex: str
    birth_date: date
    used_name: str | None = None
    used_given_name: str | None = None
    birth_place: str | None = None
    ipp: str | None = None
    ins: str | None = None
    ins_oid: str | None = None
    ins_qualified: bool = False
    address_lines: tuple[str, ...] = ()
    postal_code: str | None = None
    city: str | None = None

    def address_text(self) -> str:
        place = " ".join(v for v in (self.postal_code, self.city) if v)
        return ", ".join([*self.address_lines, *([place] if place else [])])

    def merge_record(self) -> dict[str, Any]:
        """The record as `templates.merge_values` reads it (the patient service's shape)."""
        return {
            "ipp": self.ipp,
            "identity_status": "qualifiee" if self.ins_qualified else "provisoire",
            "ins": {"matricule": self.ins, "oid": self.ins_oid} if self.ins else None,
            "traits": {
                "birth_name": self.birth_name,
                "first_birth_given_name": self.first_given_name,
                "birth_given_names": self.birth_given_names,
                "used_name": self.used_name,
                "used_first_name": self.used_given_name,
                "sex": self.sex,
                "birth_date": self.birth_date.isoformat(),
            },
            "contact": {
                "address": {
                    "lines": list(self.address_lines),
                    "postal_code": self.postal_code,
                    "city": self.city,
                }
            },
        }

    def to_cda(self, ipp_root: str) -> cda.Patient:
        """The CDA recordTarget; INS traits only for a qualifiée identity (RNIV)."""
        ins: dict[str, Any] = {}
        if self.ins_qualified and self.ins and self.ins_oid and self.birth_place:
            ins = {"ins": self.ins, "ins_oid": self.ins_oid}
        address = None
        if self.address_lines and self.postal_code and self.city:
            address = cda.Address(
                street_name=self.address_lines[0], postal_code=self.postal_code, city=self.city
            )
        return cda.Patient(
            **ins,
            ipp=self.ipp or self.id.replace("-", "")[:20],
            ipp_root=ipp_root,
            birth_family_name=self.birth_name,
            birth_given_names=self.birth_given_names.split() or [self.first_given_name],
            used_family_name=self.used_name,
            used_given_name=self.used_given_name,
            sex=self.sex if self.sex in ("M", "F") else "U",
            birth_date=self.birth_date,
            birthplace_cog=self.birth_place if ins else None,
            address=address,
        )


@dataclass(frozen=True)
class StructureFacts:
    id: str
    name: str
    finess: str | None = None
    address: str | None = None
    phone: str | None = None

    def merge_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "finess": self.finess,
            "address": {"lines": [self.address]} if self.address else None,
            "phone": self.phone,
        }

    def to_cda(self) -> cda.Organisation | None:
        if not self.finess:
            return None
        telecom = cda.Telecom(value=f"tel:{self.phone.replace(' ', '')}") if self.phone else None
        return cda.Organisation(finess=self.finess, name=self.name, telecom=telecom)


# TRE_G15 professions the documents name (code -> label).
PROFESSIONS = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "70": "Masseur-Kinésithérapeute",
}


@dataclass(frozen=True)
class AuthorFacts:
    user_id: str
    display_name: str
    family_name: str | None = None
    given_name: str | None = None
    rpps: str | None = None
    profession_code: str | None = None
    profession_label: str | None = None
    specialty_code: str | None = None
    specialty_label: str | None = None

    def merge_record(self) -> dict[str, Any]:
        return {
            "family_name": self.family_name,
            "given_name": self.given_name,
            "title": "Dr" if self.profession_code == "10" else None,
            "profession": self.profession_label
            or (PROFESSIONS.get(self.profession_code) if self.profession_code else None),
            "specialty": self.specialty_label,
            "rpps": self.rpps,
        }

    def to_cda(self, organisation: cda.Organisation) -> cda.Professional | None:
        """The CDA author: only a professional with an RPPS and a TRE_G15 profession."""
        if not (self.rpps and self.profession_code and self.family_name and self.given_name):
            return None
        code = f"G15_{self.profession_code}"
        if self.specialty_code:
            code += f"/{self.specialty_code}"
        label = self.profession_label or PROFESSIONS.get(self.profession_code, "Professionnel")
        return cda.Professional(
            rpps=self.rpps,
            family_name=self.family_name,
            given_name=self.given_name,
            suffix="DR" if self.profession_code == "10" else None,
            profession_code=code,
            profession_display=label,
            organisation=organisation,
        )


@dataclass(frozen=True)
class ResultFacts:
    """The latest results as `templates.merge_values` reads them: `gir: {value, at}`,
    `mms: {score, at}`, `vitals: {<kind>: {value, at}}`; and `dlu: {answers, at}`, the latest
    DLU form's answers (the structured DLU-EHPAD document is built from them)."""

    data: dict[str, Any] = field(default_factory=dict)


class PatientSource(Protocol):
    async def patient(
        self, patient_id: str, *, user_id: str, structure_id: str
    ) -> PatientRecordFacts | None:
        """The record if the acting structure knows it, else None."""
        ...


class DirectorySource(Protocol):
    async def author(self, user_id: str) -> AuthorFacts | None: ...

    async def structure(self, structure_id: str) -> StructureFacts | None: ...


class ResultsSource(Protocol):
    async def results(self, patient_id: str, *, user_id: str, structure_id: str) -> ResultFacts: ...


@dataclass(frozen=True)
class Sources:
    patients: PatientSource
    directory: DirectorySource
    results: ResultsSource


# -- HTTP adapters ----------------------------------------------------------------------------


async def _get(client: ServiceClient, peer: str, path: str, **headers: str) -> Any | None:
    """The JSON of a 200, None for a 404; PeerUnavailable otherwise."""
    try:
        response = await client.get(path, headers=headers)
    except httpx.HTTPError as error:
        log.warning("peer_unreachable", peer=peer, error_type=type(error).__name__)
        raise PeerUnavailable(f"The {peer} service is unreachable") from None
    except ServiceAuthUnavailable:
        raise PeerUnavailable("documents could not obtain its service token") from None
    if response.status_code == 200:
        return response.json()
    if response.status_code in (404, 422):
        return None
    log.warning("peer_error", peer=peer, status=response.status_code)
    raise PeerUnavailable(f"The {peer} service did not answer properly")


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value else None


def patient_from_json(body: dict[str, Any]) -> PatientRecordFacts:
    traits = body.get("traits") or {}
    address = (body.get("contact") or {}).get("address") or {}
    ins = body.get("ins") or {}
    return PatientRecordFacts(
        id=str(body["id"]),
        structure_id=str(body["structure_id"]),
        birth_name=traits["birth_name"],
        birth_given_names=traits["birth_given_names"],
        first_given_name=traits["first_birth_given_name"],
        sex=traits["sex"],
        birth_date=date.fromisoformat(traits["birth_date"]),
        used_name=_text(traits, "used_name"),
        used_given_name=_text(traits, "used_first_name"),
        birth_place=_text(traits, "birth_place"),
        ipp=_text(body, "ipp"),
        ins=_text(ins, "matricule"),
        ins_oid=_text(ins, "oid"),
        ins_qualified=body.get("identity_status") == "qualifiee",
        address_lines=tuple(str(line) for line in address.get("lines") or ()),
        postal_code=_text(address, "postal_code"),
        city=_text(address, "city"),
    )


class HttpSources:
    """The three ports over the peers' service-only routes."""

    def __init__(
        self, patient: ServiceClient, identity: ServiceClient, forms: ServiceClient
    ) -> None:
        self._patient, self._identity, self._forms = patient, identity, forms

    async def patient(
        self, patient_id: str, *, user_id: str, structure_id: str
    ) -> PatientRecordFacts | None:
        body = await _get(
            self._patient,
            "patient",
            f"internal/patients/{patient_id}",
            **{"X-Structure-Id": structure_id, "X-On-Behalf-Of": user_id},
        )
        return patient_from_json(body) if isinstance(body, dict) else None

    async def author(self, user_id: str) -> AuthorFacts | None:
        body = await _get(self._identity, "identity", f"internal/users/{user_id}")
        if not isinstance(body, dict):
            return None
        return AuthorFacts(
            user_id=user_id,
            display_name=_text(body, "display_name") or user_id,
            family_name=_text(body, "last_name"),
            given_name=_text(body, "first_name"),
            rpps=_text(body, "rpps"),
            profession_code=_text(body, "profession_code"),
            profession_label=_text(body, "profession_label"),
            specialty_code=_text(body, "specialty_code"),
            specialty_label=_text(body, "specialty_label"),
        )

    async def structure(self, structure_id: str) -> StructureFacts | None:
        body = await _get(self._identity, "identity", f"internal/structures/{structure_id}")
        if not isinstance(body, dict):
            return None
        return StructureFacts(
            id=structure_id,
            name=_text(body, "name") or structure_id,
            finess=_text(body, "finess"),
            address=_text(body, "address"),
            phone=_text(body, "phone"),
        )

    async def results(self, patient_id: str, *, user_id: str, structure_id: str) -> ResultFacts:
        body = await _get(
            self._forms,
            "forms",
            f"internal/patients/{patient_id}/results",
            **{"X-Structure-Id": structure_id, "X-On-Behalf-Of": user_id},
        )
        if not isinstance(body, dict):
            return ResultFacts()
        return ResultFacts(
            {k: v for k, v in body.items() if k in ("gir", "mms", "vitals", "dlu") and v}
        )
