"""Unit tests for RNIV traits validation, normalisation and the COG dataset."""

from datetime import UTC, date, datetime

import pytest

from bsante.chassis.text import search_key
from bsante.patient.identity import traits
from bsante.patient.identity.cog import CogKind, default_cog
from bsante.patient.identity.traits import (
    IdentityTraits,
    Sex,
    TraitValidationError,
    to_ins_form,
    validate_birth_date,
    validate_birth_place,
    validate_name,
)

TODAY = date(2025, 6, 1)


def make(**overrides: object) -> IdentityTraits:
    values: dict[str, object] = {
        "birth_name": "Dupont",
        "birth_given_names": "Jean Pierre Marie",
        "sex": "M",
        "birth_date": "1980-02-29",
        "birth_place": "75056",
        "today": TODAY,
    }
    values.update(overrides)
    return IdentityTraits.create(**values)  # type: ignore[arg-type]


def test_search_normalisation_matches_variants() -> None:
    assert search_key("Saint-Éloi") == search_key("SAINT ELOI") == "SAINTELOI"
    assert search_key("d’Ornée") == search_key("D'ORNEE") == "DORNEE"


def test_ins_form() -> None:
    assert to_ins_form("Éloïse d’Ornée-Œuvray") == "ELOISE D'ORNEE-OEUVRAY"
    assert to_ins_form("  Müller   Straße ") == "MULLER STRASSE"


@pytest.mark.parametrize(
    "value", ["Dupont2", "Du_pont", "-Dupont", "Du--pont", "Du  -pont", "Иванов"]
)
def test_invalid_names(value: str) -> None:
    with pytest.raises(TraitValidationError) as exc:
        validate_name(value, "birth_name")
    assert exc.value.field == "birth_name"


def test_name_length_and_required() -> None:
    with pytest.raises(TraitValidationError, match="longer than 100"):
        validate_name("A" * 101, "birth_name")
    with pytest.raises(TraitValidationError, match="birth_name: is required"):
        validate_name("  ", "birth_name")
    assert validate_name(None, "used_name", required=False) is None


def test_create_defaults_first_given_name_and_keeps_accents() -> None:
    traits = make(birth_name="  Lefèvre-d’Arc ", used_name="Martin")
    assert traits.birth_name == "Lefèvre-d'Arc"
    assert traits.first_birth_given_name == "Jean"
    assert traits.sex is Sex.MALE and traits.born_abroad is False


@pytest.mark.parametrize("first", ["Jean", "Jean Pierre", "Jean-Pierre", "JEAN PIERRE MARIE"])
def test_first_given_name_prefix_at_word_boundary(first: str) -> None:
    assert make(first_birth_given_name=first).first_birth_given_name == first


@pytest.mark.parametrize(
    ("names", "first"),
    [("Jean Pierre", "Pierre"), ("Jeanne", "Jean"), ("Jean-Pierre Marie", "Jean")],
)
def test_first_given_name_must_start_list(names: str, first: str) -> None:
    with pytest.raises(TraitValidationError) as exc:
        make(birth_given_names=names, first_birth_given_name=first)
    assert exc.value.field == "first_birth_given_name"


def test_sex() -> None:
    assert make(sex="i").sex is Sex.UNDETERMINED
    with pytest.raises(TraitValidationError, match="sex: must be M, F or I"):
        make(sex="X")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2023-02-29", "not a calendar date"),
        ("1980-13-01", "not a calendar date"),
        ("01/02/1980", "expected YYYY-MM-DD"),
        ("2025-06-02", "in the future"),
        ("1849-12-31", "before 1850"),
    ],
)
def test_birth_date_rejections(value: str, message: str) -> None:
    with pytest.raises(TraitValidationError, match=message):
        validate_birth_date(value, today=TODAY)


def test_birth_date_today_is_ok() -> None:
    assert validate_birth_date(TODAY, today=TODAY) == TODAY


@pytest.mark.parametrize(
    ("utc_now", "local_birth"),
    [
        # 00:30 in Paris (winter, UTC+1): still the day before in UTC.
        (datetime(2026, 12, 1, 23, 30, tzinfo=UTC), date(2026, 12, 2)),
        # 08:00 in Nouméa (UTC+11): 21:00 the day before in UTC.
        (datetime(2026, 12, 1, 21, 0, tzinfo=UTC), date(2026, 12, 2)),
    ],
)
def test_a_birth_just_after_local_midnight_is_not_in_the_future(
    monkeypatch: pytest.MonkeyPatch, utc_now: datetime, local_birth: date
) -> None:
    monkeypatch.setattr(traits, "_utc_now", lambda: utc_now)
    assert validate_birth_date(local_birth.isoformat()) == local_birth
    # The day after is in the future everywhere.
    with pytest.raises(TraitValidationError, match="in the future"):
        validate_birth_date(date(2026, 12, 3).isoformat())


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("75056", CogKind.COMMUNE),  # Paris
        ("75113", CogKind.ARRONDISSEMENT),  # Paris 13e
        ("2A004", CogKind.COMMUNE),  # Ajaccio
        ("20004", CogKind.ANCIENNE_COMMUNE),  # Ajaccio before the 1976 split of Corsica
        ("78018", CogKind.ANCIENNE_COMMUNE),  # Argenteuil, Seine-et-Oise before 1968
        ("97411", CogKind.COMMUNE),  # Saint-Denis (La Réunion)
        ("98735", CogKind.COMMUNE),  # Papeete
        ("99134", CogKind.PAYS),  # Spain
        ("99352", CogKind.PAYS),  # Algeria
    ],
)
def test_known_birth_places(code: str, kind: CogKind) -> None:
    entry = validate_birth_place(code)
    assert entry is not None and entry.kind is kind


def test_born_abroad() -> None:
    assert make(birth_place="99134").born_abroad is True
    assert make(birth_place=None).born_abroad is None


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("75000", "not a known INSEE COG"),  # postal-code-like, not a COG code
        ("99999", "not a known INSEE COG"),
        ("99100", "99100 \\(France\\) is not a birth place"),
        ("7505", "not a COG code"),
        ("2C004", "not a COG code"),
    ],
)
def test_unknown_birth_places(code: str, message: str) -> None:
    with pytest.raises(TraitValidationError, match=message) as exc:
        make(birth_place=code)
    assert exc.value.field == "birth_place"


def test_dataset_size_and_successor() -> None:
    cog = default_cog()
    assert len(cog) > 39_000
    old = cog.lookup("78018")
    assert old is not None and old.successor == "95018"
