"""Unit tests of the patient record rules: corrections, merge, RPPS, keys, INSi adapters."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bsante.patient import domain
from bsante.patient.annotations import check_rpps, luhn_ok
from bsante.patient.domain import InsData, Traits, new_patient
from bsante.patient.identity.insi import InsiResultCode, SearchByTraits
from bsante.patient.insi_gateway import (
    InsiUnavailableError,
    SimulatedInsi,
    SoapInsi,
    load_dataset,
)
from bsante.patient.timeline import stamp

TRAITS = Traits(
    birth_name="Saint-Éloi",
    first_birth_given_name="Zoé",
    birth_given_names="Zoé Anne",
    sex="F",
    birth_date=date(1940, 1, 2),
)


def record(**kw: object) -> domain.PatientRecord:
    patient = new_patient(structure_id="s", ipp="00000001", traits=TRAITS, author="u1")
    return patient.model_copy(update=kw)


def test_search_keys_fold_accents_case_and_separators() -> None:
    patient = record()
    assert patient.search.birth_name == "SAINTELOI"
    assert patient.search.used_name == "SAINTELOI"  # no used name: the birth name
    assert patient.search.given_name == "ZOE"


def test_correcting_used_names_keeps_the_status_and_logs_the_previous_traits() -> None:
    patient = record(identity_status="recuperee", ins=InsData(matricule="1", oid="x"))
    changed = domain.correct_traits(patient, TRAITS.model_copy(update={"used_name": "Roy"}), "u2")
    assert changed.identity_status == "recuperee"
    assert changed.search.used_name == "ROY"
    assert changed.history[-1].action == "traits_corrected"
    assert changed.history[-1].details["previous"]["used_name"] is None


def test_strict_traits_from_insi_are_locked() -> None:
    patient = record(identity_status="qualifiee")
    with pytest.raises(domain.TraitsLockedError):
        domain.correct_traits(patient, TRAITS.model_copy(update={"birth_name": "Roy"}), "u2")


def test_a_validated_identity_whose_strict_traits_change_becomes_provisional() -> None:
    patient = record(identity_status="validee")
    changed = domain.correct_traits(patient, TRAITS.model_copy(update={"sex": "M"}), "u2")
    assert changed.identity_status == "provisoire" and changed.document_check is None


def test_merge_rules() -> None:
    kept, dup = record(), record(nir="279035121518989")
    new_kept, retired = domain.merge(kept, dup, "u")
    assert new_kept.merged_from == [dup.id] and new_kept.nir == "279035121518989"
    assert new_kept.lineage == [str(kept.id), str(dup.id)]
    assert not retired.active and retired.merged_into == kept.id
    with pytest.raises(domain.MergeRefusedError, match="itself"):
        domain.merge(kept, kept, "u")
    with pytest.raises(domain.MergeRefusedError, match="different matricules"):
        domain.merge(record(nir="279035121518989"), record(nir="162018885045327"), "u")
    with pytest.raises(domain.MergeRefusedError, match="more reliable"):
        domain.merge(record(), record(identity_status="qualifiee"), "u")
    with pytest.raises(domain.MergeRefusedError, match="already merged"):
        domain.merge(kept, retired, "u")


def test_rpps_check() -> None:
    assert check_rpps("99700367909") == "99700367909"  # ANS test RPPS
    assert check_rpps(" 01234567897 ") == "01234567897"
    assert luhn_ok("79927398713")
    for bad in ("99700367908", "9970036790", "9970036790a"):
        with pytest.raises(ValueError):
            check_rpps(bad)


def test_timeline_stamps_have_a_fixed_width() -> None:
    assert stamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    assert len(stamp(datetime(2026, 1, 1, 1, 2, 3, 4, tzinfo=UTC))) == 27


def test_demo_dataset_and_custom_dataset(tmp_path: Path) -> None:
    people = load_dataset()
    assert {p.identity.birth_name for p in people} >= {"ECETINSI", "LEFEVRE"}
    path = tmp_path / "insi.json"
    path.write_text(
        json.dumps(
            {
                "people": [
                    {
                        "matricule": "279035121518989",
                        "oid": "1.2.250.1.213.1.4.10",
                        "birth_name": "ONLY",
                        "given_names": "ONE",
                        "sex": "F",
                        "birth_date": "1979-03-12",
                        "birth_place": "51454",
                    }
                ]
            }
        )
    )
    insi = SimulatedInsi(load_dataset(str(path)))
    request = SearchByTraits(birth_name="Only", given_names="One", sex="F", birth_date="1979-03-12")
    assert asyncio.run(insi.search_by_traits(request)).code is InsiResultCode.FOUND


def test_soap_adapter_has_the_call_shape_but_refuses_to_run() -> None:
    request = SearchByTraits(birth_name="A&B", given_names="C", sex="F", birth_date="1979-03-12")
    action, body = SoapInsi.body(request)
    assert action.endswith("rechercherInsAvecTraitsIdentite")
    assert body.startswith('<RECSANSVITALE xmlns="http://www.cnamts.fr/INSiRecSans">')
    assert "<NomNaissance>A&amp;B</NomNaissance>" in body
    with pytest.raises(InsiUnavailableError, match="not configured"):
        asyncio.run(SoapInsi("").search_by_traits(request))
    with pytest.raises(InsiUnavailableError, match="not implemented"):
        asyncio.run(SoapInsi("https://insi.invalid").search_by_traits(request))
