"""Unit tests for the RNIV identity status state machine."""

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from bsante.patient.identity.nir import Ins, InsOid
from bsante.patient.identity.status import (
    CompanionDocument,
    IdentityAttributes,
    IdentityDocumentCheck,
    IdentityDocumentType,
    IdentityRecord,
    IdentityStatus,
    RefusalReason,
    TraitDiscrepancy,
    TransitionRefusedError,
    compare_traits,
)
from bsante.patient.identity.traits import IdentityTraits

NOW = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
INS = Ins("279035121518989", InsOid.NIR_TEST)


def traits(**overrides: object) -> IdentityTraits:
    values: dict[str, object] = {
        "birth_name": "Lefèvre",
        "birth_given_names": "Élodie Marie",
        "sex": "F",
        "birth_date": "1979-03-12",
        "birth_place": "51454",
        "used_name": "Martin",
        "today": date(2025, 6, 1),
    }
    values.update(overrides)
    return IdentityTraits.create(**values)  # type: ignore[arg-type]


REFERENCE = traits(birth_name="LEFEVRE", birth_given_names="ELODIE MARIE", used_name=None)


def check(
    doc: IdentityDocumentType = IdentityDocumentType.CARTE_NATIONALE_IDENTITE, **kw: object
) -> IdentityDocumentCheck:
    return IdentityDocumentCheck(document_type=doc, checked_by="user-42", checked_at=NOW, **kw)  # type: ignore[arg-type]


def test_labels_and_flags() -> None:
    assert IdentityStatus.QUALIFIEE.label == "Identité qualifiée"
    assert IdentityStatus("RECUP") is IdentityStatus.RECUPEREE
    assert [s for s in IdentityStatus if s.ins_shareable] == [IdentityStatus.QUALIFIEE]


def test_prov_insi_recup_then_document_qual() -> None:
    record = IdentityRecord(traits=traits())
    step1 = record.after_insi_recovery(ins=INS, reference=REFERENCE, queried_at=NOW)
    assert step1.status is IdentityStatus.RECUPEREE and not step1.became_qualified
    assert step1.record.traits.birth_name == "LEFEVRE"  # INS traits adopted
    assert step1.record.traits.used_name == "Martin"  # used name kept
    assert step1.discrepancies == ()  # accents/case are not differences
    step2 = step1.record.after_document_check(check())
    assert step2.status is IdentityStatus.QUALIFIEE and step2.became_qualified


def test_prov_document_vali_then_insi_qual() -> None:
    step1 = IdentityRecord(traits=traits()).after_document_check(check())
    assert step1.status is IdentityStatus.VALIDEE and not step1.became_qualified
    step2 = step1.record.after_insi_recovery(ins=INS, reference=REFERENCE, queried_at=NOW)
    assert step2.status is IdentityStatus.QUALIFIEE and step2.became_qualified
    assert step2.record.ins == INS


def test_became_qualified_only_once() -> None:
    qual = (
        IdentityRecord(traits=traits())
        .after_document_check(check())
        .record.after_insi_recovery(ins=INS, reference=REFERENCE, queried_at=NOW)
        .record
    )
    again = qual.after_insi_recovery(ins=INS, reference=REFERENCE, queried_at=NOW)
    assert again.status is IdentityStatus.QUALIFIEE and not again.became_qualified
    assert not qual.after_document_check(check()).became_qualified


def test_vali_with_different_insi_traits_is_refused() -> None:
    vali = IdentityRecord(traits=traits()).after_document_check(check()).record
    reference = replace(REFERENCE, birth_name="LEFEBVRE", birth_place="51108")
    with pytest.raises(TransitionRefusedError) as exc:
        vali.after_insi_recovery(ins=INS, reference=reference, queried_at=NOW)
    assert exc.value.reason is RefusalReason.TRAITS_MISMATCH
    assert exc.value.discrepancies == (
        TraitDiscrepancy("birth_name", "Lefèvre", "LEFEBVRE"),
        TraitDiscrepancy("birth_place", "51454", "51108"),
    )


def test_prov_to_recup_reports_discrepancies_without_refusing() -> None:
    typed = traits(birth_name="Lefevre", birth_given_names="Elodie")
    step = IdentityRecord(traits=typed).after_insi_recovery(
        ins=INS, reference=REFERENCE, queried_at=NOW
    )
    assert step.status is IdentityStatus.RECUPEREE
    assert [d.field for d in step.discrepancies] == ["birth_given_names"]


def test_compare_traits_rules() -> None:
    local = traits(
        birth_name="Saint Éloi",
        birth_given_names="Anne Sophie",
        first_birth_given_name="Anne-Sophie",
    )
    ref = traits(birth_name="SAINT-ELOI", birth_given_names="ANNE SOPHIE", used_name=None)
    fields = [d.field for d in compare_traits(local, ref)]
    assert fields == ["birth_name"]  # hyphen vs space matters; compound first name is fine
    assert [d.field for d in compare_traits(traits(sex="M"), REFERENCE)] == ["sex"]
    older = traits(birth_date="1979-03-13")
    assert compare_traits(older, REFERENCE)[0] == TraitDiscrepancy(
        "birth_date", "1979-03-13", "1979-03-12"
    )


def test_birth_place_of_merged_commune_matches_current_code() -> None:
    local = traits(birth_place="95018")  # Argenteuil today
    ref = replace(REFERENCE, birth_place="78018")  # INSi: code at birth (Seine-et-Oise)
    assert compare_traits(local, ref) == ()


def test_document_traits_mismatch_refuses_qualification() -> None:
    recup = (
        IdentityRecord(traits=traits())
        .after_insi_recovery(ins=INS, reference=REFERENCE, queried_at=NOW)
        .record
    )
    doc = check(document_traits=traits(birth_given_names="Elodie"))
    with pytest.raises(TransitionRefusedError) as exc:
        recup.after_document_check(doc)
    assert [d.field for d in exc.value.discrepancies] == ["birth_given_names"]
    assert recup.status is IdentityStatus.RECUPEREE


@pytest.mark.parametrize(
    "doc",
    [
        IdentityDocumentType.PASSEPORT,
        IdentityDocumentType.TITRE_SEJOUR,
        IdentityDocumentType.DOCUMENT_CIRCULATION_ETRANGER_MINEUR,
    ],
)
def test_high_trust_documents(doc: IdentityDocumentType) -> None:
    assert check(doc).is_high_trust


def test_driving_licence_is_refused() -> None:
    with pytest.raises(TransitionRefusedError) as exc:
        IdentityRecord(traits=traits()).after_document_check(
            check(IdentityDocumentType.PERMIS_CONDUIRE)
        )
    assert exc.value.reason is RefusalReason.NOT_HIGH_TRUST


def test_birth_certificate_needs_companion() -> None:
    alone = check(IdentityDocumentType.EXTRAIT_ACTE_NAISSANCE)
    assert not alone.is_high_trust
    with_parent = check(
        IdentityDocumentType.LIVRET_FAMILLE, companion=CompanionDocument.PARENT_HIGH_TRUST_DOCUMENT
    )
    assert IdentityRecord(traits=traits()).after_document_check(with_parent).status is (
        IdentityStatus.VALIDEE
    )


def test_doubtful_identity_stays_provisional() -> None:
    record = IdentityRecord(traits=traits(), attributes=IdentityAttributes(doubtful=True))
    with pytest.raises(TransitionRefusedError) as exc:
        record.after_insi_recovery(ins=INS, reference=REFERENCE, queried_at=NOW)
    assert exc.value.reason is RefusalReason.ATTRIBUTE_FORBIDS
    with pytest.raises(TransitionRefusedError):
        record.after_document_check(check())
    with pytest.raises(ValueError, match="both doubtful and fictitious"):
        IdentityAttributes(doubtful=True, fictitious=True)


def test_check_and_record_invariants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        IdentityDocumentCheck(
            document_type=IdentityDocumentType.PASSEPORT,
            checked_by="u",
            checked_at=datetime(2025, 1, 1),
        )
    with pytest.raises(ValueError, match="checked_by"):
        IdentityDocumentCheck(
            document_type=IdentityDocumentType.PASSEPORT, checked_by=" ", checked_at=NOW
        )
    with pytest.raises(ValueError, match="requires the INS"):
        IdentityRecord(traits=traits(), status=IdentityStatus.RECUPEREE)
