"""Tests for the streaming PS_LibreAcces_Personne_activite parser and the synthetic generator."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from bsante.identity.directory.annuaire import (
    COLUMNS,
    REQUIRED_COLUMNS,
    AnnuaireHeaderError,
    PersonActivity,
    Rejection,
    RejectReason,
    parse_personne_activite,
    synthetic_personne_activite_lines,
    write_synthetic_personne_activite,
)
from bsante.identity.directory.identifiers import FinessKind

HEADER = "|".join(COLUMNS) + "|\n"
_POS = {name: i for i, name in enumerate(COLUMNS)}


def line(**values: str) -> str:
    """A data line: a valid default record, overridden by column name (spaces → _)."""
    row = [""] * len(COLUMNS)
    defaults = {
        "Type d'identifiant PP": "8",
        "Identifiant PP": "99700367909",
        "Identification nationale PP": "899700367909",
        "Code civilité d'exercice": "DR",
        "Libellé civilité d'exercice": "Docteur",
        "Nom d'exercice": "MARTIN",
        "Prénom d'exercice": "Léa",
        "Code profession": "10",
        "Libellé profession": "Médecin",
        "Code catégorie professionnelle": "C",
        "Libellé catégorie professionnelle": "Civil",
        "Code type savoir-faire": "S",
        "Code savoir-faire": "SM54",
        "Libellé savoir-faire": "Médecine générale (SM)",
        "Numéro SIRET site": "26750045200011",
        "Numéro SIREN site": "267500452",
        "Numéro FINESS site": "750803447",
        "Numéro FINESS établissement juridique": "750712184",
        "Identifiant technique de la structure": "R10000000001",
        "Raison sociale site": "HOPITAL TEST",
        "Code postal (coord. structure)": "75015",
        "Code commune (coord. structure)": "75056",
        "Libellé commune (coord. structure)": "Paris",
        "Adresse e-mail (coord. structure)": "lea.martin@aphp.mssante.fr",
    }
    defaults.update(values)
    for name, value in defaults.items():
        row[_POS[name]] = value
    return "|".join(row) + "|\n"


def parse_text(text: str) -> list[PersonActivity | Rejection]:
    return list(parse_personne_activite(io.BytesIO(text.encode("utf-8"))))


def test_parses_a_full_record() -> None:
    (record,) = parse_text(HEADER + line())
    assert isinstance(record, PersonActivity)
    assert record.line_number == 2
    assert record.rpps is not None and record.rpps.value == "99700367909"
    assert record.ps_id_nat.value == "899700367909"
    assert (record.last_name, record.first_name) == ("MARTIN", "Léa")
    assert (record.profession_code, record.profession_label) == ("10", "Médecin")
    assert (record.category_code, record.category_label) == ("C", "Civil")
    assert (record.skill_code, record.skill_label) == ("SM54", "Médecine générale (SM)")
    structure = record.structure
    assert structure.finess_site is not None and structure.finess_site.kind is FinessKind.ET
    assert structure.finess_ej is not None and structure.finess_ej.kind is FinessKind.EJ
    assert structure.finess_ej.value == "750712184"
    assert (structure.siret, structure.siren) == ("26750045200011", "267500452")
    assert structure.company_name == "HOPITAL TEST"
    assert (structure.postal_code, structure.commune_code, structure.commune_label) == (
        "75015",
        "75056",
        "Paris",
    )
    assert structure.mssante_email == "lea.martin@aphp.mssante.fr"


def test_optional_fields_become_none_and_plain_email_is_not_mssante() -> None:
    (record,) = parse_text(
        HEADER
        + line(
            **{
                "Numéro FINESS site": "",
                "Numéro FINESS établissement juridique": "",
                "Prénom d'exercice": " ",
                "Adresse e-mail (coord. structure)": "cabinet@example.org",
            }
        )
    )
    assert isinstance(record, PersonActivity)
    assert record.structure.finess_site is None and record.structure.finess_ej is None
    assert record.first_name is None
    assert record.structure.email == "cabinet@example.org"
    assert record.structure.mssante_email is None


def test_adeli_line() -> None:
    (record,) = parse_text(
        HEADER
        + line(
            **{
                "Type d'identifiant PP": "0",
                "Identifiant PP": "750006033",
                "Identification nationale PP": "0750006033",
            }
        )
    )
    assert isinstance(record, PersonActivity)
    assert record.rpps is None
    assert record.adeli is not None and record.adeli.value == "750006033"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Identifiant PP": "99700367908"}, RejectReason.INVALID_RPPS),
        ({"Identifiant PP": "9970036790"}, RejectReason.INVALID_RPPS),
        (
            {"Identifiant PP": "", "Identification nationale PP": ""},
            RejectReason.MISSING_IDENTIFIER,
        ),
        ({"Identification nationale PP": "801234567897"}, RejectReason.INCONSISTENT_NATIONAL_ID),
        ({"Type d'identifiant PP": "3"}, RejectReason.UNKNOWN_IDENTIFIER_TYPE),
        (
            {"Type d'identifiant PP": "0", "Identifiant PP": "75-006033"},
            RejectReason.INVALID_ADELI,
        ),
        ({"Numéro FINESS site": "750803448"}, RejectReason.INVALID_FINESS_SITE),
        ({"Numéro FINESS établissement juridique": "75071218"}, RejectReason.INVALID_FINESS_EJ),
        ({"Nom d'exercice": ""}, RejectReason.MISSING_NAME),
    ],
)
def test_rejection_reasons(overrides: dict[str, str], reason: RejectReason) -> None:
    (result,) = parse_text(HEADER + line(**overrides))
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.line_number == 2
    assert result.detail


def test_identifier_recovered_from_national_id_when_identifiant_pp_is_empty() -> None:
    (record,) = parse_text(HEADER + line(**{"Identifiant PP": ""}))
    assert isinstance(record, PersonActivity)
    assert record.rpps is not None and record.rpps.value == "99700367909"


def test_wrong_column_count_and_parsing_continues() -> None:
    good = line()
    short = good.replace("|", "", 3)
    longer = good.rstrip("\n") + "extra|more|\n"
    results = parse_text(HEADER + short + good + longer + good)
    assert [type(r).__name__ for r in results] == [
        "Rejection",
        "PersonActivity",
        "Rejection",
        "PersonActivity",
    ]
    assert isinstance(results[0], Rejection)
    assert results[0].reason is RejectReason.WRONG_COLUMN_COUNT
    assert "expected 56 columns" in results[0].detail
    assert [r.line_number for r in results] == [2, 3, 4, 5]


def test_line_without_trailing_separator_is_accepted() -> None:
    (record,) = parse_text(HEADER + line().replace("|\n", "\n"))
    assert isinstance(record, PersonActivity)


def test_invalid_utf8_line_is_rejected_not_fatal() -> None:
    data = (HEADER + line()).encode() + "MARTIN é\n".encode("latin-1") + line().encode()
    results = list(parse_personne_activite(io.BytesIO(data)))
    assert isinstance(results[1], Rejection) and results[1].reason is RejectReason.ENCODING
    assert isinstance(results[2], PersonActivity)


def test_other_encoding_can_be_requested() -> None:
    data = (HEADER + line()).encode("cp1252")
    (record,) = list(parse_personne_activite(io.BytesIO(data), encoding="cp1252"))
    assert isinstance(record, PersonActivity) and record.first_name == "Léa"


def test_bom_and_crlf() -> None:
    text = (HEADER + line() + line()).replace("\n", "\r\n")
    data = b"\xef\xbb\xbf" + text.encode("utf-8")
    results = list(parse_personne_activite(io.BytesIO(data)))
    assert len(results) == 2
    assert all(isinstance(r, PersonActivity) for r in results)
    first = results[0]
    assert isinstance(first, PersonActivity)
    assert first.structure.mssante_email == "lea.martin@aphp.mssante.fr"  # no stray "\r"


def test_text_stream_with_bom_and_crlf() -> None:
    text = "\ufeff" + (HEADER + line()).replace("\n", "\r\n")
    stream = io.StringIO(text, newline="")
    (record,) = list(parse_personne_activite(stream))
    assert isinstance(record, PersonActivity)


def test_blank_lines_are_skipped() -> None:
    results = parse_text(HEADER + "\n" + line() + "\r\n\n")
    assert len(results) == 1


def test_columns_may_be_reordered_and_extra_columns_ignored() -> None:
    names = list(reversed(COLUMNS)) + ["Colonne future"]
    header = "|".join(names) + "\n"
    fields = line().removesuffix("|\n").split("|")
    by_name = dict(zip(COLUMNS, fields, strict=True))
    by_name["Colonne future"] = "x"
    data = header + "|".join(by_name[n] for n in names) + "\n"
    (record,) = parse_text(data)
    assert isinstance(record, PersonActivity) and record.last_name == "MARTIN"


# --- Header errors: raised at call time, before anything is yielded -------------------------


def test_missing_required_column_raises_before_iteration() -> None:
    header = HEADER.replace("|Identifiant PP|", "|Identifiant|")
    with pytest.raises(AnnuaireHeaderError) as info:
        parse_personne_activite(io.BytesIO((header + line()).encode()))
    assert info.value.missing == frozenset({"Identifiant PP"})
    assert "Identifiant PP" in str(info.value)


def test_wrong_file_is_refused() -> None:
    with pytest.raises(AnnuaireHeaderError) as info:
        parse_personne_activite(io.BytesIO(b"a;b;c\n1;2;3\n"))
    assert info.value.missing == REQUIRED_COLUMNS


def test_duplicated_required_column_is_refused() -> None:
    header = HEADER.rstrip("\n") + "Nom d'exercice|\n"
    with pytest.raises(AnnuaireHeaderError) as info:
        parse_personne_activite(io.BytesIO(header.encode()))
    assert info.value.duplicated == frozenset({"Nom d'exercice"})


def test_empty_file_and_undecodable_header_are_refused() -> None:
    with pytest.raises(AnnuaireHeaderError, match="empty file"):
        parse_personne_activite(io.BytesIO(b""))
    with pytest.raises(AnnuaireHeaderError, match="not valid"):
        parse_personne_activite(io.BytesIO(HEADER.encode("latin-1")))


def test_header_is_checked_before_reading_data_lines() -> None:
    consumed: list[int] = []

    def lines() -> Iterator[bytes]:
        yield b"not|a|header\n"
        for i in range(10):
            consumed.append(i)
            yield line().encode()

    with pytest.raises(AnnuaireHeaderError):
        parse_personne_activite(lines())
    assert consumed == []


# --- Synthetic data and streaming behaviour ------------------------------------------------


def test_synthetic_generator_is_deterministic() -> None:
    first = list(synthetic_personne_activite_lines(50, seed=7))
    assert first == list(synthetic_personne_activite_lines(50, seed=7))
    assert first != list(synthetic_personne_activite_lines(50, seed=8))
    assert len(first) == 51


def test_parser_is_lazy() -> None:
    """Only the lines actually requested are pulled from the source."""
    pulled = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for text in synthetic_personne_activite_lines(1_000_000, seed=3):
            pulled += 1
            yield text

    results = parse_personne_activite(source())
    first_three = [next(results) for _ in range(3)]
    assert all(isinstance(r, PersonActivity) for r in first_three)
    assert pulled == 4  # header + 3 lines


def test_parse_20_000_synthetic_lines() -> None:
    # The 100 000-line timing is in bench/test_bench_identity.py; here only the results count.
    buffer = io.BytesIO()
    write_synthetic_personne_activite(buffer, 20_000, seed=42, bom=True, newline="\r\n")
    buffer.seek(0)
    records = rejections = corsica = 0
    for result in parse_personne_activite(buffer):
        if isinstance(result, Rejection):
            rejections += 1
            continue
        records += 1
        if result.structure.finess_site and result.structure.finess_site.departement[1] in "AB":
            corsica += 1
    assert (records, rejections) == (20_000, 0)
    assert corsica > 0
