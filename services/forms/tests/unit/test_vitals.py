"""Unit tests of vital sign kinds, units, plausible ranges, normal bands and readings."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from bsante.forms.vitals import (
    ACCEPTED_UNITS,
    GLUCOSE_MMOL_PER_G,
    SPECS,
    Band,
    BloodPressureReading,
    Interval,
    Reading,
    VitalKind,
    VitalValueError,
    classify,
    validate_value,
)

AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

EXPECTED = {
    # kind: (unit, plausible, normal)
    VitalKind.PULSE: ("bpm", (20, 250), (60, 100)),
    VitalKind.SYSTOLIC_BP: ("mmHg", (40, 300), (90, 140)),
    VitalKind.DIASTOLIC_BP: ("mmHg", (20, 200), (60, 90)),
    VitalKind.TEMPERATURE: ("°C", (30, 45), (36.0, 37.8)),
    VitalKind.SPO2: ("%", (50, 100), (95, 100)),
    VitalKind.RESPIRATORY_RATE: ("/min", (2, 80), (12, 20)),
    VitalKind.WEIGHT: ("kg", (0.3, 500), None),
    VitalKind.PAIN: ("/10", (0, 10), (0, 3)),
    VitalKind.GLYCAEMIA: ("g/L", (0.1, 10), (0.7, 1.1)),
}


def test_every_kind_has_a_spec() -> None:
    assert set(SPECS) == set(VitalKind) == set(EXPECTED)


@pytest.mark.parametrize("kind", list(VitalKind))
def test_spec_values(kind: VitalKind) -> None:
    unit, plausible, normal = EXPECTED[kind]
    spec = SPECS[kind]
    assert spec.kind is kind
    assert spec.unit == unit
    assert (spec.plausible.low, spec.plausible.high) == plausible
    assert (None if spec.normal is None else (spec.normal.low, spec.normal.high)) == normal
    if spec.normal is not None:
        assert spec.normal.low in spec.plausible and spec.normal.high in spec.plausible
    assert spec.label


@pytest.mark.parametrize("kind", list(VitalKind))
def test_plausible_range_is_inclusive(kind: VitalKind) -> None:
    spec = SPECS[kind]
    assert validate_value(kind, spec.plausible.low) == spec.plausible.low
    assert validate_value(kind, spec.plausible.high) == spec.plausible.high
    step = 10.0 ** -(spec.decimals + 1)
    for outside in (spec.plausible.low - step, spec.plausible.high + step):
        with pytest.raises(VitalValueError, match=f"^{kind.value}: .*plausible range") as caught:
            validate_value(kind, outside)
        assert caught.value.field == kind.value


def test_error_names_the_given_field_and_unit() -> None:
    with pytest.raises(VitalValueError) as caught:
        validate_value(VitalKind.PULSE, 700, field="pouls_matin")
    assert caught.value.field == "pouls_matin"
    assert str(caught.value) == ("pouls_matin: 700 bpm is outside the plausible range 20–250 bpm")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "80", None])
def test_non_numbers_are_rejected(bad: object) -> None:
    with pytest.raises(VitalValueError, match="^pulse: expected a"):
        validate_value(VitalKind.PULSE, bad)  # type: ignore[arg-type]


def test_integers_are_accepted_and_returned_as_float() -> None:
    value = validate_value(VitalKind.PULSE, 72)
    assert value == 72.0 and isinstance(value, float)


def test_glycaemia_in_mmol_per_litre_is_converted() -> None:
    assert GLUCOSE_MMOL_PER_G == pytest.approx(5.551, abs=1e-3)
    assert validate_value(VitalKind.GLYCAEMIA, 5.551, unit="mmol/L") == pytest.approx(1.0, 1e-4)
    assert validate_value(VitalKind.GLYCAEMIA, 1.26, unit="g/L") == 1.26
    with pytest.raises(VitalValueError, match="60 mmol/L is outside"):
        validate_value(VitalKind.GLYCAEMIA, 60, unit="mmol/L")


def test_unknown_unit_is_rejected() -> None:
    with pytest.raises(VitalValueError, match=r"temperature: unit '°F' is not accepted \(use °C\)"):
        validate_value(VitalKind.TEMPERATURE, 98.6, unit="°F")
    with pytest.raises(VitalValueError, match="use g/L, mmol/L"):
        validate_value(VitalKind.GLYCAEMIA, 1, unit="mg/dL")
    assert set(ACCEPTED_UNITS) == set(VitalKind)


@pytest.mark.parametrize(
    ("kind", "value", "band"),
    [
        (VitalKind.PULSE, 59, Band.LOW),
        (VitalKind.PULSE, 60, Band.NORMAL),
        (VitalKind.PULSE, 100, Band.NORMAL),
        (VitalKind.PULSE, 101, Band.HIGH),
        (VitalKind.SYSTOLIC_BP, 89, Band.LOW),
        (VitalKind.SYSTOLIC_BP, 140, Band.NORMAL),
        (VitalKind.SYSTOLIC_BP, 141, Band.HIGH),
        (VitalKind.DIASTOLIC_BP, 90, Band.NORMAL),
        (VitalKind.DIASTOLIC_BP, 91, Band.HIGH),
        (VitalKind.TEMPERATURE, 35.9, Band.LOW),
        (VitalKind.TEMPERATURE, 37.8, Band.NORMAL),
        (VitalKind.TEMPERATURE, 37.9, Band.HIGH),
        (VitalKind.SPO2, 94, Band.LOW),
        (VitalKind.SPO2, 95, Band.NORMAL),
        (VitalKind.SPO2, 100, Band.NORMAL),
        (VitalKind.RESPIRATORY_RATE, 11, Band.LOW),
        (VitalKind.RESPIRATORY_RATE, 21, Band.HIGH),
        (VitalKind.PAIN, 3, Band.NORMAL),
        (VitalKind.PAIN, 4, Band.HIGH),
        (VitalKind.GLYCAEMIA, 0.69, Band.LOW),
        (VitalKind.GLYCAEMIA, 1.1, Band.NORMAL),
        (VitalKind.GLYCAEMIA, 1.11, Band.HIGH),
        (VitalKind.WEIGHT, 70, None),
    ],
)
def test_classify(kind: VitalKind, value: float, band: Band | None) -> None:
    assert classify(kind, value) is band


def test_interval_contains_is_closed() -> None:
    interval = Interval(1, 2)
    assert 1 in interval and 2 in interval and 1.5 in interval
    assert 0.999 not in interval and 2.001 not in interval


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


def test_reading_is_normalised_to_utc() -> None:
    paris_winter = timezone(timedelta(hours=1))
    reading = Reading(at=datetime(2026, 1, 5, 9, 0, tzinfo=paris_winter), kind="pulse", value=80)
    assert reading.at == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert reading.at.utcoffset() == timedelta(0)
    assert reading.kind is VitalKind.PULSE


def test_reading_requires_an_aware_timestamp() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Reading(at=datetime(2026, 1, 5, 9, 0), kind=VitalKind.PULSE, value=80)


def test_reading_rejects_implausible_value_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="value: 46 °C is outside the plausible range"):
        Reading(at=AT, kind=VitalKind.TEMPERATURE, value=46)


@pytest.mark.parametrize("kind", [VitalKind.SYSTOLIC_BP, VitalKind.DIASTOLIC_BP])
def test_blood_pressure_components_need_a_pair(kind: VitalKind) -> None:
    with pytest.raises(ValidationError, match="systolic/diastolic pair"):
        Reading(at=AT, kind=kind, value=120)


def test_blood_pressure_pair() -> None:
    bp = BloodPressureReading(at=AT, systolic=128, diastolic=76)
    assert (bp.systolic, bp.diastolic) == (128.0, 76.0)
    with pytest.raises(ValidationError, match="diastolic: 80 mmHg is not below the systolic"):
        BloodPressureReading(at=AT, systolic=80, diastolic=80)
    with pytest.raises(ValidationError, match="systolic: 350 mmHg is outside"):
        BloodPressureReading(at=AT, systolic=350, diastolic=80)
    with pytest.raises(ValidationError, match="diastolic: 10 mmHg is outside"):
        BloodPressureReading(at=AT, systolic=120, diastolic=10)


def test_readings_are_frozen_and_strict_about_fields() -> None:
    reading: Any = Reading(at=AT, kind=VitalKind.SPO2, value=97)
    with pytest.raises(ValidationError):
        reading.value = 80
    with pytest.raises(ValidationError):
        Reading.model_validate({"at": AT, "kind": "spo2", "value": 97, "unit": "%"})
    with pytest.raises(ValidationError):
        Reading.model_validate({"at": AT, "kind": "heart_rate", "value": 97})
