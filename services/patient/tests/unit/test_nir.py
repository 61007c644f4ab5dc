"""Unit tests for the matricule INS key and the Ins value object."""

import pytest

from bsante.patient.identity.nir import (
    Ins,
    InsOid,
    InvalidMatriculeError,
    compute_nir_key,
    parse_matricule,
    validate_matricule,
)


@pytest.mark.parametrize(
    ("nir13", "key"),
    [
        ("2790351215189", 89),  # ANS test INS
        ("1620188850453", 27),  # ANS test INS
        ("185052A004123", 56),  # born in Ajaccio (dept 2A -> 19 before the modulo)
        ("185052B033123", 86),  # born in Bastia (dept 2B -> 18)
        ("1090763220834", 89),  # INSi test identity ECETINSI (INSACTIF)
        ("2090763220834", 39),  # same identity, INSHISTO
    ],
)
def test_compute_key(nir13: str, key: int) -> None:
    assert compute_nir_key(nir13) == key


def test_corsica_substitution_only_in_department_field() -> None:
    # Fact-sheet vector "1932A12345678" (key 59 by a global 2A->19 replace) has 2A in the
    # month field (characters 4-5): not a NIR. The substitution applies to characters 6-7 only.
    with pytest.raises(InvalidMatriculeError, match="13 first characters must be digits"):
        compute_nir_key("1932A12345678")
    assert compute_nir_key("185052B033123") == 97 - int("1850518033123") % 97


def test_validate_accepts_spaces_and_lowercase_corsica() -> None:
    assert validate_matricule("2 79 03 51 215 189 89") == "279035121518989"
    assert validate_matricule("185052a00412356") == "185052A00412356"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("27903512151898", "15 characters"),
        ("2790351215189890", "15 characters"),
        ("579035121518989", "first character"),
        ("27903X121518989", "digits only"),
        ("279035121518988", "control key 88"),
    ],
)
def test_validate_rejects(value: str, message: str) -> None:
    with pytest.raises(InvalidMatriculeError, match=message):
        validate_matricule(value)


def test_fictitious_month_is_accepted() -> None:
    nir13 = "1933099123456"  # month 30: fictitious month used by the RNIPP
    assert validate_matricule(f"{nir13}{compute_nir_key(nir13):02d}")


def test_parse_overseas_department() -> None:
    nir13 = "2850597411001"
    parts = parse_matricule(f"{nir13}{compute_nir_key(nir13):02d}")
    assert (parts.department, parts.commune_or_country) == ("974", "11")
    assert parts.sex_digit == "2" and parts.birth_month == "05"


def test_ins_value_object() -> None:
    ins = Ins("279035121518989", InsOid.NIR_TEST)
    assert ins.is_test and not ins.is_nia
    assert ins.system == "urn:oid:1.2.250.1.213.1.4.10"
    assert Ins("162018885045327", "1.2.250.1.213.1.4.9").is_nia  # type: ignore[arg-type]


def test_ins_from_insi_fields() -> None:
    ins = Ins.from_insi("1090763220834", "89", "1.2.250.1.213.1.4.8")
    assert ins.matricule == "109076322083489" and ins.oid is InsOid.NIR


@pytest.mark.parametrize("oid", ["1.2.250.1.213.1.4.2", "1.2.250.1.213.1.4.5", "foo"])
def test_ins_rejects_unknown_oid(oid: str) -> None:
    with pytest.raises(InvalidMatriculeError, match="not an INS assigning authority"):
        Ins("279035121518989", oid)  # type: ignore[arg-type]


def test_ins_rejects_bad_key() -> None:
    with pytest.raises(InvalidMatriculeError, match="control key"):
        Ins("279035121518988", InsOid.NIR)


def _nir(first13: str) -> str:
    return first13 + f"{compute_nir_key(first13):02d}"


def test_the_nir_is_compared_with_the_traits() -> None:
    from datetime import date

    from bsante.patient.identity.nir import nir_disagreements

    def fields(matricule: str, sex: str = "F", born: str = "1941-03-02", place: str | None = None):
        found = nir_disagreements(
            matricule, sex=sex, birth_date=date.fromisoformat(born), birth_place=place
        )
        return [(d.field, d.confirmable) for d in found]

    assert fields(_nir("2410375056123"), place="75056") == []
    assert fields(_nir("2410375056123"), sex="I") == []  # sex I is not compared
    assert fields(_nir("1410375056123")) == [("sex", False)]
    assert fields(_nir("4410375056123"), sex="M") == [("sex", False)]  # 4: female
    assert fields(_nir("2420375056123")) == [("birth_date", False)]
    assert fields(_nir("2410475056123")) == [("birth_date", False)]
    for fictitious in ("20", "42", "50", "99"):
        assert fields(_nir(f"241{fictitious}75056123")) == [], fictitious
    assert fields(_nir("2410375056123"), place="51454") == [("birth_place", True)]
    assert fields(_nir("24103992171234"[:13]), place="99217") == []
    assert fields(_nir("2410397105123"), place="97105") == []  # overseas: 3 + 2 digits
