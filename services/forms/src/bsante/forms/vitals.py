"""Vital signs: kinds, units, plausible ranges for data-entry checks, adult normal bands, readings.

Plausible ranges only catch typing errors (a pulse of 700, a temperature in °F): anything inside
them is accepted, however alarming. Normal bands are resting adult values used to shade the
surveillance chart; they are not alert thresholds and not valid for children.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator


class VitalKind(StrEnum):
    """Measured quantities; blood pressure is two kinds recorded together."""

    PULSE = "pulse"
    SYSTOLIC_BP = "systolic_bp"
    DIASTOLIC_BP = "diastolic_bp"
    TEMPERATURE = "temperature"
    SPO2 = "spo2"
    RESPIRATORY_RATE = "respiratory_rate"
    WEIGHT = "weight"
    PAIN = "pain"
    GLYCAEMIA = "glycaemia"


@dataclass(frozen=True, slots=True)
class Interval:
    """Closed interval [low, high]."""

    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class VitalSpec:
    """How a kind is labelled, in which unit it is stored, and which values make sense."""

    kind: VitalKind
    label: str  # French, as printed on the chart
    unit: str  # canonical storage and display unit
    plausible: Interval
    normal: Interval | None  # None when no population band makes sense (weight)
    decimals: int  # display precision


SPECS: Final[Mapping[VitalKind, VitalSpec]] = {
    spec.kind: spec
    for spec in (
        VitalSpec(VitalKind.PULSE, "Pouls", "bpm", Interval(20, 250), Interval(60, 100), 0),
        VitalSpec(
            VitalKind.SYSTOLIC_BP,
            "Pression artérielle systolique",
            "mmHg",
            Interval(40, 300),
            Interval(90, 140),
            0,
        ),
        VitalSpec(
            VitalKind.DIASTOLIC_BP,
            "Pression artérielle diastolique",
            "mmHg",
            Interval(20, 200),
            Interval(60, 90),
            0,
        ),
        VitalSpec(
            VitalKind.TEMPERATURE, "Température", "°C", Interval(30, 45), Interval(36.0, 37.8), 1
        ),
        VitalSpec(VitalKind.SPO2, "SpO₂", "%", Interval(50, 100), Interval(95, 100), 0),
        VitalSpec(
            VitalKind.RESPIRATORY_RATE,
            "Fréquence respiratoire",
            "/min",
            Interval(2, 80),
            Interval(12, 20),
            0,
        ),
        # Wide enough for a premature newborn and for bariatric patients; no normal band since
        # the meaningful reference is the patient's own usual weight.
        VitalSpec(VitalKind.WEIGHT, "Poids", "kg", Interval(0.3, 500), None, 1),
        # EVA: below 4 is usually left untreated, so 0-3 is shaded as the acceptable band.
        VitalSpec(VitalKind.PAIN, "Douleur (EVA)", "/10", Interval(0, 10), Interval(0, 3), 0),
        # Stored in g/L as French labs and nurses' charts do; the band is the fasting one
        # (0.70-1.10 g/L), so post-prandial capillary values above it are not necessarily abnormal.
        VitalSpec(VitalKind.GLYCAEMIA, "Glycémie", "g/L", Interval(0.1, 10), Interval(0.7, 1.1), 2),
    )
}

# 1 g/L of glucose (M = 180.156 g/mol) is 5.551 mmol/L.
GLUCOSE_MMOL_PER_G: Final = 1000 / 180.156

# Accepted entry units per kind, as the factor that converts them to the canonical unit.
ACCEPTED_UNITS: Final[Mapping[VitalKind, Mapping[str, float]]] = {
    kind: {spec.unit: 1.0} for kind, spec in SPECS.items()
} | {VitalKind.GLYCAEMIA: {"g/L": 1.0, "mmol/L": 1 / GLUCOSE_MMOL_PER_G}}


class VitalValueError(ValueError):
    """A vital sign value was rejected; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def validate_value(
    kind: VitalKind, value: float, *, unit: str | None = None, field: str | None = None
) -> float:
    """Check a value against the kind's plausible range and return it in the canonical unit.

    ``unit`` defaults to the canonical unit; glycaemia is also accepted in mmol/L. ``field``
    names the input in the error (defaults to the kind's name).
    """
    spec = SPECS[kind]
    name = field or kind.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VitalValueError(name, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise VitalValueError(name, f"expected a finite number, got {value!r}")
    factors = ACCEPTED_UNITS[kind]
    chosen = spec.unit if unit is None else unit
    if chosen not in factors:
        accepted = ", ".join(factors)
        raise VitalValueError(name, f"unit {chosen!r} is not accepted (use {accepted})")
    canonical = float(value) * factors[chosen]
    if canonical not in spec.plausible:
        raise VitalValueError(
            name,
            f"{value:g} {chosen} is outside the plausible range "
            f"{spec.plausible.low:g}–{spec.plausible.high:g} {spec.unit}",
        )
    return canonical


class Band(StrEnum):
    """Position of a value relative to the normal band."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


def classify(kind: VitalKind, value: float) -> Band | None:
    """Where a canonical value falls against the adult normal band (None if the kind has none)."""
    normal = SPECS[kind].normal
    if normal is None:
        return None
    if value < normal.low:
        return Band.LOW
    if value > normal.high:
        return Band.HIGH
    return Band.NORMAL


def _to_utc(at: datetime) -> datetime:
    # Aware timestamps in another zone are accepted and normalised so that sorting and gap
    # detection never mix offsets.
    return at.astimezone(UTC)


class Reading(BaseModel):
    """One measurement, value in the canonical unit; blood pressure uses BloodPressureReading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    kind: VitalKind
    value: float

    @field_validator("at")
    @classmethod
    def _utc(cls, at: datetime) -> datetime:
        return _to_utc(at)

    @model_validator(mode="after")
    def _plausible(self) -> Reading:
        if self.kind in (VitalKind.SYSTOLIC_BP, VitalKind.DIASTOLIC_BP):
            raise VitalValueError("kind", "blood pressure is recorded as a systolic/diastolic pair")
        validate_value(self.kind, self.value, field="value")
        return self


class BloodPressureReading(BaseModel):
    """A systolic/diastolic pair taken at the same time, in mmHg."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    systolic: float
    diastolic: float

    @field_validator("at")
    @classmethod
    def _utc(cls, at: datetime) -> datetime:
        return _to_utc(at)

    @model_validator(mode="after")
    def _plausible(self) -> BloodPressureReading:
        validate_value(VitalKind.SYSTOLIC_BP, self.systolic, field="systolic")
        validate_value(VitalKind.DIASTOLIC_BP, self.diastolic, field="diastolic")
        if self.diastolic >= self.systolic:
            raise VitalValueError(
                "diastolic",
                f"{self.diastolic:g} mmHg is not below the systolic {self.systolic:g} mmHg",
            )
        return self


AnyReading = Reading | BloodPressureReading
