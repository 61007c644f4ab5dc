"""Tests for the RPPS, ADELI, FINESS, PSIdNat and StructIdNat value objects."""

from __future__ import annotations

import dataclasses

import pytest

from bsante.identity.directory.identifiers import (
    ADELI,
    FINESS,
    PSIDNAT_OID,
    RPPS,
    STRUCTIDNAT_OID,
    FinessKind,
    PSIdNat,
    StructIdNat,
    luhn_check_digit,
    luhn_is_valid,
)


@pytest.mark.parametrize("value", ["99700367909", "01234567897", "99700367917", "99700075122"])
def test_valid_rpps(value: str) -> None:
    assert RPPS(value).value == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("99700367908", "invalid Luhn check digit"),
        ("01234567890", "invalid Luhn check digit"),
        ("9970036790", "exactly 11 digits"),
        ("997003679090", "exactly 11 digits"),
        ("9970036790A", "exactly 11 digits"),
        (" 99700367909", "exactly 11 digits"),
        ("٩٩٧٠٠٣٦٧٩٠٩", "exactly 11 digits"),  # Arabic-Indic digits are not ASCII digits
        ("", "exactly 11 digits"),
    ],
)
def test_invalid_rpps(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RPPS(value)


def test_rpps_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        RPPS(99700367909)  # type: ignore[arg-type]


def test_rpps_from_payload_and_ps_id_nat() -> None:
    rpps = RPPS.from_payload("9970036790")
    assert rpps.value == "99700367909"
    assert rpps.ps_id_nat == PSIdNat("899700367909")
    assert str(rpps) == "99700367909"


def test_value_objects_are_frozen() -> None:
    rpps = RPPS("99700367909")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rpps.value = "01234567897"  # type: ignore[misc]


@pytest.mark.parametrize("value", ["751234567", "0B7010446", "2A1234567", "123456789"])
def test_valid_adeli_format(value: str) -> None:
    assert ADELI(value).ps_id_nat.value == "0" + value


@pytest.mark.parametrize("value", ["75123456", "7512345678", "75123456a", "75-234567", ""])
def test_invalid_adeli_format(value: str) -> None:
    with pytest.raises(ValueError, match="ADELI must be exactly 9 characters"):
        ADELI(value)


@pytest.mark.parametrize(
    "value",
    [
        "750712184",  # AP-HP (EJ)
        "690781810",  # HCL (EJ)
        "130786049",
        "330781196",
        "310781406",
        "750803447",  # from the StructIdNat example 1750803447
        # Corsica, real numbers from ARS Corse decisions (A→1, B→2 before Luhn):
        "2B0000020",  # CH Bastia
        "2B0005342",  # CH Calvi
        "2B0004246",  # CH Corte-Tattone
        "2A0000170",  # CH Bonifacio
        "2A0000386",  # CH Castelluccio
        "2A0002606",  # CH Sartène
    ],
)
def test_valid_finess(value: str) -> None:
    finess = FINESS(value, FinessKind.EJ)
    assert finess.value == value
    assert finess.kind is FinessKind.EJ
    assert finess.departement == value[:2]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("750712185", "invalid Luhn"),
        ("2B0000021", "invalid Luhn"),
        ("2A0000171", "invalid Luhn"),
        ("75071218", "9 characters"),
        ("7507121840", "9 characters"),
        ("2C0000020", "9 characters"),
        ("3A0000020", "9 characters"),
        ("2a0000170", "9 characters"),
        ("75071218X", "9 characters"),
    ],
)
def test_invalid_finess(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FINESS(value)


def test_finess_kind_distinguishes_ej_and_et() -> None:
    ej = FINESS("750712184", FinessKind.EJ)
    et = FINESS("750712184", FinessKind.ET)
    assert ej != et
    assert FINESS("750712184").kind is None
    with pytest.raises(ValueError, match="kind"):
        FINESS("750712184", "EJ")  # type: ignore[arg-type]


def test_finess_from_payload_including_corsica() -> None:
    assert FINESS.from_payload("75071218").value == "750712184"
    assert FINESS.from_payload("2B000002", FinessKind.ET).value == "2B0000020"
    with pytest.raises(ValueError, match="invalid characters"):
        FINESS.from_payload("2C000002")


def test_struct_id_nat() -> None:
    sid = FINESS("750803447").struct_id_nat
    assert sid.value == "1750803447"
    assert sid.finess.value == "750803447"
    assert StructIdNat.OID == STRUCTIDNAT_OID == "1.2.250.1.71.4.2.2"
    assert StructIdNat("12B0000020").finess.departement == "2B"
    for bad in ("2750803447", "1750803448", "1", ""):
        with pytest.raises(ValueError, match="invalid StructIdNat"):
            StructIdNat(bad)


def test_ps_id_nat() -> None:
    rpps_form = PSIdNat("801234567897")
    assert rpps_form.rpps == RPPS("01234567897")
    assert rpps_form.adeli is None
    adeli_form = PSIdNat("0751234567")
    assert adeli_form.adeli == ADELI("751234567")
    assert adeli_form.rpps is None
    assert PSIdNat.OID == PSIDNAT_OID == "1.2.250.1.71.4.2.1"


@pytest.mark.parametrize(
    "value",
    [
        "801234567890",  # bad Luhn
        "80123456789",  # too short
        "3760021832/000000018",  # structure-internal identifier
        "101234567897",
        "",
    ],
)
def test_invalid_ps_id_nat(value: str) -> None:
    with pytest.raises(ValueError, match="invalid PSIdNat"):
        PSIdNat(value)


def test_luhn_helpers() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_is_valid("79927398713")
    assert not luhn_is_valid("79927398710")
    assert not luhn_is_valid("")
    assert not luhn_is_valid("12a")
    with pytest.raises(ValueError, match="digits"):
        luhn_check_digit("")
