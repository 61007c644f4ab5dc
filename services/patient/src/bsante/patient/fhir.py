"""Map a patient identity to a FHIR R4 FR Core Patient resource (plain JSON-ready dict)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bsante.patient.identity.cog import CogRepository, default_cog, is_country_code
from bsante.patient.identity.nir import Ins, InsOid
from bsante.patient.identity.status import (
    IdentityDocumentCheck,
    IdentityDocumentType,
    IdentityStatus,
)
from bsante.patient.identity.traits import IdentityTraits, Sex

__all__ = [
    "FR_CORE_PATIENT",
    "FR_CORE_PATIENT_INS",
    "PatientIdentity",
    "to_fr_core_patient",
]

_FR_CORE = "https://hl7.fr/ig/fhir/core"
FR_CORE_PATIENT = f"{_FR_CORE}/StructureDefinition/fr-core-patient"
FR_CORE_PATIENT_INS = f"{_FR_CORE}/StructureDefinition/fr-core-patient-ins"
EXT_IDENTITY_RELIABILITY = f"{_FR_CORE}/StructureDefinition/fr-core-identity-reliability"
EXT_BIRTH_LIST_GIVEN_NAME = f"{_FR_CORE}/StructureDefinition/fr-core-patient-birth-list-given-name"
EXT_ADDRESS_INSEE_CODE = f"{_FR_CORE}/StructureDefinition/fr-core-address-insee-code"
EXT_BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
CS_IDENTITY_STATUS = f"{_FR_CORE}/CodeSystem/fr-core-cs-identity-status"
CS_MODE_VALIDATION = f"{_FR_CORE}/CodeSystem/fr-core-cs-mode-validation-identity"
CS_IDENTIFIER_TYPE_FR = f"{_FR_CORE}/CodeSystem/fr-core-cs-v2-0203"
CS_IDENTIFIER_TYPE_HL7 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SYSTEM_INSEE_COMMUNE = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"

_INS_TYPE_CODE = {
    InsOid.NIR: "INS-NIR",
    InsOid.NIA: "INS-NIA",
    InsOid.NIR_TEST: "INS-NIR-TEST",
    InsOid.NIR_DEMO: "INS-NIR-DEMO",
}
# FR Core ValueSet fr-core-vs-patient-gender-INS = male | female | unknown; RNIV "I"
# (indéterminé) has no INSi counterpart and maps to unknown.
_GENDER = {Sex.MALE: "male", Sex.FEMALE: "female", Sex.UNDETERMINED: "unknown"}
# FR Core fr-core-cs-mode-validation-identity (2.2.0-ballot-2). Codes changed between
# ballots; combinations (birth certificate + parent's document) have no code and are omitted.
_VALIDATION_MODE = {
    IdentityDocumentType.CARTE_NATIONALE_IDENTITE: ("CN", "Carte nationale d'identité"),
    IdentityDocumentType.PASSEPORT: ("PA", "Passeport"),
    IdentityDocumentType.TITRE_SEJOUR: ("CS", "Carte de séjour"),
    IdentityDocumentType.DOCUMENT_CIRCULATION_ETRANGER_MINEUR: (
        "DC",
        "Document de Circulation pour étranger mineur",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientIdentity:
    """What the FHIR mapping needs to know about a patient."""

    id: str
    traits: IdentityTraits
    status: IdentityStatus
    ipp: str
    ipp_system: str
    ins: Ins | None = None
    insi_queried_at: datetime | None = None
    document_check: IdentityDocumentCheck | None = None
    active: bool = True


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _reliability(patient: PatientIdentity) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {
            "url": "identityStatus",
            "valueCoding": _coding(CS_IDENTITY_STATUS, patient.status.value, patient.status.label),
        }
    ]
    if patient.insi_queried_at is not None:
        subs.append(
            {
                "url": "dateInterrogationINSi",
                "valueDate": patient.insi_queried_at.date().isoformat(),
            }
        )
    check = patient.document_check
    if check is not None:
        subs.append({"url": "validationDate", "valueDate": check.checked_at.date().isoformat()})
        mode = _VALIDATION_MODE.get(check.document_type)
        if mode is not None:
            subs.append(
                {"url": "validationMode", "valueCoding": _coding(CS_MODE_VALIDATION, *mode)}
            )
    return {"url": EXT_IDENTITY_RELIABILITY, "extension": subs}


def _birth_place(code: str, cog: CogRepository) -> dict[str, Any]:
    entry = cog.lookup(code)
    address: dict[str, Any] = {
        "extension": [
            {"url": EXT_ADDRESS_INSEE_CODE, "valueCoding": _coding(SYSTEM_INSEE_COMMUNE, code)}
        ]
    }
    if entry is not None:
        # Born abroad: the 99xxx COG code is the country (FR Core address-insee-code note).
        address["country" if is_country_code(code) else "city"] = entry.name
    return {"url": EXT_BIRTH_PLACE, "valueAddress": address}


def _ins_identifier(ins: Ins) -> dict[str, Any]:
    return {
        # NIA is temporary (pending a NIR): FR Core fixes use = temp for INS-NIA.
        "use": "temp" if ins.oid is InsOid.NIA else "official",
        "type": {"coding": [_coding(CS_IDENTIFIER_TYPE_FR, _INS_TYPE_CODE[ins.oid])]},
        "system": ins.system,
        "value": ins.matricule,
    }


def _names(traits: IdentityTraits) -> list[dict[str, Any]]:
    official: dict[str, Any] = {
        "extension": [{"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": traits.birth_given_names}],
        "use": "official",
        "family": traits.birth_name,
        "given": [traits.first_birth_given_name],
    }
    names = [official]
    if traits.used_name or traits.used_first_name:
        usual: dict[str, Any] = {"use": "usual"}
        if traits.used_name:
            usual["family"] = traits.used_name
        if traits.used_first_name:
            usual["given"] = [traits.used_first_name]
        names.append(usual)
    return names


def to_fr_core_patient(
    patient: PatientIdentity, *, cog: CogRepository | None = None
) -> dict[str, Any]:
    """Build the Patient resource.

    The INS (matricule + OID) is written only for a qualified identity: RNIV allows the INS
    to reference exchanged health data only then, and FR Core defines the INS slices only in
    fr-core-patient-ins. Other statuses produce a fr-core-patient with the IPP and the
    reliability extension, so the receiver knows the identity's confidence level.
    """
    cog = cog or default_cog()
    with_ins = patient.ins is not None and patient.status is IdentityStatus.QUALIFIEE
    extensions: list[dict[str, Any]] = [_reliability(patient)]
    if patient.traits.birth_place is not None:
        extensions.append(_birth_place(patient.traits.birth_place, cog))
    identifiers: list[dict[str, Any]] = []
    if with_ins and patient.ins is not None:
        identifiers.append(_ins_identifier(patient.ins))
    identifiers.append(
        {
            "use": "usual",
            "type": {
                "coding": [_coding(CS_IDENTIFIER_TYPE_HL7, "PI", "Patient internal identifier")]
            },
            "system": patient.ipp_system,
            "value": patient.ipp,
        }
    )
    return {
        "resourceType": "Patient",
        "id": patient.id,
        "meta": {"profile": [FR_CORE_PATIENT_INS if with_ins else FR_CORE_PATIENT]},
        "extension": extensions,
        "identifier": identifiers,
        "active": patient.active,
        "name": _names(patient.traits),
        "gender": _GENDER[patient.traits.sex],
        "birthDate": patient.traits.birth_date.isoformat(),
    }
