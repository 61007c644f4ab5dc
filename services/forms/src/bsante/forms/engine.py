"""Form engine: versioned definitions (typed fields, allowed values, required rules) and answers.

A definition is data (fields) plus three optional hooks written in Python: `rules` (cross-field
checks run at completion), `compute` (results such as the GIR) and `prefill` (suggested answers
from the patient record). Answers are checked field by field; every error names its path
(`answers.TOI.haut`, `answers.participants.2.specialty`) so the client can point at it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from bsante.chassis.text import unsafe_character

JSON = dict[str, Any]
TEXT_MAX: Final = 4000
# Tolerated advance of a typed date-time over the server clock (devices drift).
CLOCK_SKEW: Final = timedelta(minutes=5)
ADVERBS: Final = ("S", "T", "C", "H")
# Tolerated advance of a typed date over the server's UTC day: the structure's own day can
# already be tomorrow in UTC+14, and clocks drift.
DATE_SKEW: Final = timedelta(hours=14)
_TIME: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class FieldType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"  # ISO 8601 calendar date
    DATETIME = "datetime"  # ISO 8601 with an offset; stored in UTC
    TIME = "time"  # HH:MM, local time of the structure
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    GROUP = "group"  # an object of sub-fields
    LIST = "list"  # a list of objects of sub-fields
    # An AGGIR (sub-)variable: "A"/"B"/"C", or the four adverbs {"S","T","C","H": bool}.
    AGGIR = "aggir"


class Choice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    label: str
    system: str | None = Field(None, description="Code system of `code`, e.g. SNOMED CT OID")


class FieldDef(BaseModel):
    """One field of a form definition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    label: str
    type: FieldType
    required: bool = False
    choices: tuple[Choice, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    unit: str | None = None
    fields: tuple[FieldDef, ...] = Field((), description="Members of a group or list item")
    personal: bool = Field(
        False, description="Identity traits or a third party's contact: kept out of events"
    )
    code: str | None = Field(None, description="Coded concept of the field (SNOMED CT, LOINC)")
    help: str | None = None
    past: bool = Field(
        False, description="A date or date-time that cannot be in the future (an evaluation)"
    )
    adverbs: tuple[Choice, ...] = Field(
        (),
        description="For an `aggir` field: the keys of the adverb object, each true or false "
        "(the alternative to a code of `choices`)",
    )


def text(fid: str, label: str, **kw: Any) -> FieldDef:
    return FieldDef(id=fid, label=label, type=FieldType.TEXT, **kw)


def boolean(fid: str, label: str, **kw: Any) -> FieldDef:
    return FieldDef(id=fid, label=label, type=FieldType.BOOLEAN, **kw)


def choice(fid: str, label: str, options: Sequence[tuple[str, str]], **kw: Any) -> FieldDef:
    return FieldDef(
        id=fid,
        label=label,
        type=kw.pop("type", FieldType.CHOICE),
        choices=tuple(Choice(code=c, label=lbl) for c, lbl in options),
        **kw,
    )


def group(fid: str, label: str, members: Sequence[FieldDef], **kw: Any) -> FieldDef:
    return FieldDef(id=fid, label=label, type=FieldType.GROUP, fields=tuple(members), **kw)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    type: str = "value_error"

    def as_problem(self) -> dict[str, str]:
        return {"field": self.field, "location": "body", "message": self.message, "type": self.type}


@dataclass(frozen=True)
class PatientFacts:
    """What the forms need to know of a patient, as the patient service tells it."""

    id: str
    structure_id: str | None = None
    birth_name: str | None = None
    first_name: str | None = None
    used_name: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    mobile: str | None = None
    address: str | None = None  # one line: street lines, postcode, city
    attending_physician: str | None = None  # the médecin traitant's name

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class FormContext:
    """Facts a definition's hooks may use besides the answers."""

    at: datetime
    patient: PatientFacts | None = None
    # The latest completed AGGIR of the patient: (submission id, completed_at, results).
    latest_aggir: tuple[str, datetime, JSON] | None = None


Rules = Callable[[JSON, FormContext], list[FieldError]]
Compute = Callable[[JSON, FormContext], JSON]
Prefill = Callable[[FormContext], JSON]


def _no_rules(_: JSON, __: FormContext) -> list[FieldError]:
    return []


def _no_results(_: JSON, __: FormContext) -> JSON:
    return {}


@dataclass(frozen=True)
class FormDefinition:
    """A versioned form: a published version never changes; a change is a new version."""

    id: str
    version: int
    title: str
    description: str
    fields: tuple[FieldDef, ...]
    rules: Rules = _no_rules
    compute: Compute = _no_results
    prefill: Prefill | None = None
    notes: tuple[str, ...] = field(default=())

    def check(
        self, answers: Any, *, complete: bool, at: datetime | None = None
    ) -> tuple[JSON, list[FieldError]]:
        """Normalised answers and field errors; `complete` also enforces required fields;
        `at` (now) refuses future values of the fields marked `past`."""
        if not isinstance(answers, Mapping):
            return {}, [FieldError("answers", "expected an object of answers", "type_error")]
        return check_fields(self.fields, answers, "answers", complete, at)

    @property
    def computes(self) -> bool:
        return self.compute is not _no_results

    def personal_paths(self) -> list[tuple[str, ...]]:
        return _personal(self.fields, ())


def _personal(fields: Sequence[FieldDef], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for f in fields:
        if f.personal:
            paths.append((*prefix, f.id))
        elif f.type is FieldType.GROUP:
            paths.extend(_personal(f.fields, (*prefix, f.id)))
        elif f.type is FieldType.LIST and any(m.personal for m in f.fields):
            paths.append((*prefix, f.id, "*", *(m.id for m in f.fields if m.personal)))
    return paths


def without_personal(definition: FormDefinition, answers: JSON) -> JSON:
    """A copy of the answers without the fields marked personal (for events)."""
    data: JSON = _deep_copy(answers)
    for path in definition.personal_paths():
        _drop(data, path)
    return data


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _drop(data: Any, path: tuple[str, ...]) -> None:
    if not isinstance(data, dict) or not path:
        return
    head, rest = path[0], path[1:]
    if len(path) >= 2 and path[1] == "*":
        for item in data.get(head) or []:
            for leaf in path[2:]:
                if isinstance(item, dict):
                    item.pop(leaf, None)
        return
    if not rest:
        data.pop(head, None)
    else:
        _drop(data.get(head), rest)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def check_fields(
    fields: Sequence[FieldDef],
    answers: Mapping[str, Any],
    prefix: str,
    complete: bool,
    at: datetime | None = None,
) -> tuple[JSON, list[FieldError]]:
    known = {f.id: f for f in fields}
    errors = [
        FieldError(f"{prefix}.{key}", "is not a field of this form", "extra_forbidden")
        for key in answers
        if key not in known
    ]
    out: JSON = {}
    for f in fields:
        path = f"{prefix}.{f.id}"
        value = answers.get(f.id)
        if isinstance(value, str) and f.type is not FieldType.AGGIR:
            value = value.strip()
            if not value:
                # Refused rather than dropped: the client believes it stored something.
                errors.append(
                    FieldError(path, "is empty: omit the field or send null", "string_too_short")
                )
                continue
        if _empty(value):
            if complete and f.required:
                errors.append(FieldError(path, "is required", "missing"))
            continue
        normalised, problems = check_value(f, value, path, complete, at)
        errors.extend(problems)
        if not problems:
            out[f.id] = normalised
    return out, errors


def check_value(
    f: FieldDef, value: Any, path: str, complete: bool, at: datetime | None = None
) -> tuple[Any, list[FieldError]]:
    """One answer against its field: the normalised value, or the errors."""

    def fail(message: str, kind: str = "value_error") -> tuple[Any, list[FieldError]]:
        return None, [FieldError(path, message, kind)]

    match f.type:
        case FieldType.TEXT:
            if not isinstance(value, str):
                return fail("expected a text", "string_type")
            limit = f.max_length or TEXT_MAX
            if len(value) > limit:
                return fail(f"is longer than {limit} characters", "string_too_long")
            if unsafe_character(value, multiline=True) is not None:
                return fail("contains a forbidden control or bidirectional character")
            return value, []
        case FieldType.INTEGER | FieldType.NUMBER:
            integral = f.type is FieldType.INTEGER
            if isinstance(value, bool) or not isinstance(value, int | float):
                return fail(
                    "expected an integer" if integral else "expected a number", "type_error"
                )
            if integral and isinstance(value, float):
                if not value.is_integer():
                    return fail("expected an integer", "int_type")
                value = int(value)
            if not math.isfinite(value):
                return fail("expected a finite number", "finite_number")
            if f.minimum is not None and value < f.minimum:
                return fail(f"{value:g} is below the minimum {f.minimum:g}", "less_than")
            if f.maximum is not None and value > f.maximum:
                return fail(f"{value:g} is above the maximum {f.maximum:g}", "greater_than")
            return value, []
        case FieldType.BOOLEAN:
            if not isinstance(value, bool):
                return fail("expected true or false", "bool_type")
            return value, []
        case FieldType.DATE:
            try:
                parsed = date.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                parsed = None
            if parsed is None or len(value) != 10:
                return fail("expected a date YYYY-MM-DD", "date_type")
            if f.past and at is not None and parsed > (at + DATE_SKEW).date():
                return fail("is in the future", "past_date")
            return parsed.isoformat(), []
        case FieldType.DATETIME:
            try:
                moment = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                moment = None
            if moment is None:
                return fail("expected a date-time in ISO 8601", "datetime_type")
            if moment.tzinfo is None:
                return fail("the date-time needs an offset (Z or +01:00)", "timezone_aware")
            if f.past and at is not None and moment > at + CLOCK_SKEW:
                return fail("is in the future", "past_datetime")
            return iso_utc(moment), []
        case FieldType.TIME:
            if not isinstance(value, str) or not _TIME.match(value):
                return fail("expected a time HH:MM", "time_type")
            time.fromisoformat(value)
            return value, []
        case FieldType.CHOICE:
            codes = [c.code for c in f.choices]
            if not isinstance(value, str) or value not in codes:
                return fail(f"expected one of {', '.join(codes)}", "enum")
            return value, []
        case FieldType.MULTI_CHOICE:
            codes = [c.code for c in f.choices]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return fail("expected a list of codes", "list_type")
            unknown = [v for v in value if v not in codes]
            if unknown:
                return fail(f"unknown codes {', '.join(unknown)}", "enum")
            if len(set(value)) != len(value):
                return fail("a code is listed twice", "unique")
            return [c for c in codes if c in value], []
        case FieldType.AGGIR:
            return _check_aggir(value, path)
        case FieldType.GROUP:
            if not isinstance(value, Mapping):
                return fail("expected an object", "dict_type")
            return check_fields(f.fields, value, path, complete, at)
        case FieldType.LIST:
            if not isinstance(value, list):
                return fail("expected a list", "list_type")
            if f.max_items is not None and len(value) > f.max_items:
                return fail(f"at most {f.max_items} items", "too_long")
            if complete and f.min_items is not None and len(value) < f.min_items:
                return fail(f"at least {f.min_items} items", "too_short")
            items: list[JSON] = []
            errors: list[FieldError] = []
            for index, item in enumerate(value):
                if not isinstance(item, Mapping):
                    errors.append(FieldError(f"{path}.{index}", "expected an object", "dict_type"))
                    continue
                checked, problems = check_fields(f.fields, item, f"{path}.{index}", complete, at)
                items.append(checked)
                errors.extend(problems)
            return items, errors
    raise AssertionError(f"unhandled field type {f.type}")  # pragma: no cover


def _check_aggir(value: Any, path: str) -> tuple[Any, list[FieldError]]:
    if isinstance(value, str):
        if value in ("A", "B", "C"):
            return value, []
        return None, [FieldError(path, "expected A, B or C (or the adverbs S/T/C/H)", "enum")]
    if isinstance(value, Mapping):
        errors = [
            FieldError(f"{path}.{key}", "expected true or false", "bool_type")
            for key in ADVERBS
            if not isinstance(value.get(key), bool)
        ]
        errors += [
            FieldError(f"{path}.{key}", "is not an adverb (S, T, C, H)", "extra_forbidden")
            for key in value
            if key not in ADVERBS
        ]
        return ({k: value[k] for k in ADVERBS} if not errors else None), errors
    return None, [FieldError(path, "expected A, B or C, or the adverbs S/T/C/H", "enum")]


def iso_utc(moment: datetime) -> str:
    """UTC, to the second, one fixed format: stored date-times then compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
