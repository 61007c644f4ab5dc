"""Unit tests for the FR Core Patient mapping.

FR Core elements checked (Interop-Sante/hl7.fhir.fr.core, input/fsh, 2.2.0 ballot):
fr-core-patient-ins requires extension[identityReliability] 1..*, extension[birthPlace] 1..1
with valueAddress.extension[inseeCode] 1..1, identifier 1..*, gender 1..1 (male|female|unknown),
birthDate 1..1, name[officialName] 1..1 (use=official, family 1.., given 1..1) with
extension[birth-list-given-name] 1..1; INS-NIR slice: use 1.., type = fr-core-cs-v2-0203#INS-NIR,
system urn:oid:1.2.250.1.213.1.4.8, value 1..; INS-NIA: use = temp, system ...4.9.
fr-core-patient PI slice: use = usual, type = v2-0203#PI, system 1.., value 1...
"""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.patient import Patient

from bsante.patient.fhir import (
    EXT_ADDRESS_INSEE_CODE,
    EXT_BIRTH_LIST_GIVEN_NAME,
    EXT_BIRTH_PLACE,
    EXT_IDENTITY_RELIABILITY,
    FR_CORE_PATIENT,
    FR_CORE_PATIENT_INS,
    PatientIdentity,
    to_fr_core_patient,
)
from bsante.patient.identity.nir import Ins, InsOid
from bsante.patient.identity.status import (
    IdentityDocumentCheck,
    IdentityDocumentType,
    IdentityStatus,
)
from bsante.patient.identity.traits import IdentityTraits

NOW = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
TRAITS = IdentityTraits.create(
    birth_name="LEFEVRE",
    birth_given_names="ELODIE MARIE",
    sex="F",
    birth_date="1979-03-12",
    birth_place="51454",
    used_name="Martin",
    used_first_name="Lola",
    today=date(2025, 6, 1),
)


def patient(
    status: IdentityStatus = IdentityStatus.QUALIFIEE, oid: InsOid = InsOid.NIR, **kw: Any
) -> PatientIdentity:
    values: dict[str, Any] = {
        "id": "p1",
        "traits": TRAITS,
        "status": status,
        "ipp": "IPP-0001",
        "ipp_system": "urn:oid:1.2.250.1.999.1.1",
        "ins": Ins("279035121518989", oid),
        "insi_queried_at": NOW,
        "document_check": IdentityDocumentCheck(
            document_type=IdentityDocumentType.PASSEPORT, checked_by="u1", checked_at=NOW
        ),
    }
    values.update(kw)
    return PatientIdentity(**values)


def ext(resource: dict[str, Any], url: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [e for e in resource["extension"] if e["url"] == url]
    assert len(matches) == 1
    return matches[0]


def test_qualified_patient_follows_fr_core_patient_ins() -> None:
    res = to_fr_core_patient(patient())
    Patient.model_validate(res)  # well-formed FHIR R4(B) Patient
    assert res["meta"]["profile"] == [FR_CORE_PATIENT_INS]
    reliability = ext(res, EXT_IDENTITY_RELIABILITY)["extension"]
    assert {
        "url": "identityStatus",
        "valueCoding": {
            "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status",
            "code": "QUAL",
            "display": "Identité qualifiée",
        },
    } in reliability
    assert {"url": "dateInterrogationINSi", "valueDate": "2025-06-01"} in reliability
    mode = next(e for e in reliability if e["url"] == "validationMode")
    assert mode["valueCoding"]["code"] == "PA"
    birth_place = ext(res, EXT_BIRTH_PLACE)["valueAddress"]
    assert birth_place["extension"][0]["url"] == EXT_ADDRESS_INSEE_CODE
    assert birth_place["extension"][0]["valueCoding"]["code"] == "51454"
    assert birth_place["city"] == "Reims"
    ins = res["identifier"][0]
    assert ins == {
        "use": "official",
        "type": {
            "coding": [
                {
                    "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                    "code": "INS-NIR",
                }
            ]
        },
        "system": "urn:oid:1.2.250.1.213.1.4.8",
        "value": "279035121518989",
    }
    ipp = res["identifier"][1]
    assert ipp["use"] == "usual" and ipp["type"]["coding"][0]["code"] == "PI"
    assert ipp["system"] and ipp["value"] == "IPP-0001"
    official, usual = res["name"]
    assert official["use"] == "official" and official["family"] == "LEFEVRE"
    assert official["given"] == ["ELODIE"]
    assert official["extension"] == [
        {"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": "ELODIE MARIE"}
    ]
    assert usual == {"use": "usual", "family": "Martin", "given": ["Lola"]}
    assert res["gender"] == "female" and res["birthDate"] == "1979-03-12"


def test_nia_is_temp() -> None:
    res = to_fr_core_patient(patient(oid=InsOid.NIA))
    assert res["identifier"][0]["use"] == "temp"
    assert res["identifier"][0]["type"]["coding"][0]["code"] == "INS-NIA"
    assert res["identifier"][0]["system"] == "urn:oid:1.2.250.1.213.1.4.9"


@pytest.mark.parametrize(
    "status", [IdentityStatus.PROVISOIRE, IdentityStatus.RECUPEREE, IdentityStatus.VALIDEE]
)
def test_ins_not_exported_unless_qualified(status: IdentityStatus) -> None:
    res = to_fr_core_patient(patient(status=status))
    Patient.model_validate(res)
    assert res["meta"]["profile"] == [FR_CORE_PATIENT]
    assert [i["type"]["coding"][0]["code"] for i in res["identifier"]] == ["PI"]
    status_ext = ext(res, EXT_IDENTITY_RELIABILITY)["extension"][0]
    assert status_ext["valueCoding"]["code"] == status.value


def test_born_abroad_and_undetermined_sex() -> None:
    traits = IdentityTraits.create(
        birth_name="Garcia",
        birth_given_names="Lucia",
        sex="I",
        birth_date="1990-01-01",
        birth_place="99134",
    )
    res = to_fr_core_patient(
        patient(
            status=IdentityStatus.PROVISOIRE,
            traits=traits,
            ins=None,
            insi_queried_at=None,
            document_check=None,
        )
    )
    Patient.model_validate(res)
    address = ext(res, EXT_BIRTH_PLACE)["valueAddress"]
    assert address["country"] == "Espagne" and "city" not in address
    assert res["gender"] == "unknown"
    assert len(res["name"]) == 1
    assert ext(res, EXT_IDENTITY_RELIABILITY)["extension"] == [
        {
            "url": "identityStatus",
            "valueCoding": {
                "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status",
                "code": "PROV",
                "display": "Identité provisoire",
            },
        }
    ]
