"""Annuaire Santé import into a real SQLite store: idempotence, report, refusal, merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from bsante.chassis.messaging import Messaging
from bsante.identity.annuaire_import import main as cli
from bsante.identity.directory.annuaire import COLUMNS, write_synthetic_personne_activite
from bsante.identity.directory.importer import AnnuaireImportRefused, import_annuaire

_POS = {name: i for i, name in enumerate(COLUMNS)}
HEADER = "|".join(COLUMNS) + "|\n"


def line(**values: str) -> str:
    row = [""] * len(COLUMNS)
    defaults = {
        "Type d'identifiant PP": "8",
        "Identifiant PP": "99700367909",
        "Identification nationale PP": "899700367909",
        "Nom d'exercice": "MARTIN",
        "Prénom d'exercice": "Léa",
        "Code profession": "10",
        "Libellé profession": "Médecin",
        "Code type savoir-faire": "S",
        "Code savoir-faire": "SM54",
        "Libellé savoir-faire": "Médecine générale (SM)",
        "Code mode exercice": "S",
        "Numéro FINESS site": "750803447",
        "Numéro FINESS établissement juridique": "750712184",
        "Identifiant technique de la structure": "R10000000001",
        "Raison sociale site": "HOPITAL TEST",
        "Libellé commune (coord. structure)": "Paris",
        "Adresse e-mail (coord. structure)": "lea.martin@aphp.mssante.fr",
    }
    defaults.update({k.replace("_", " "): v for k, v in values.items()})
    for name, value in defaults.items():
        row[_POS[name]] = value
    return "|".join(row) + "|\n"


def write(tmp_path: Path, *lines: str, name: str = "ps.txt") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


async def snapshot(messaging: Messaging) -> dict[str, int]:
    store = messaging.store
    return {c: await store.count(c) for c in ("professionals", "structures", "activities")}


async def test_a_reimport_updates_and_never_duplicates(
    messaging: Messaging, tmp_path: Path
) -> None:
    path = tmp_path / "synthetic.txt"
    with path.open("wb") as out:
        write_synthetic_personne_activite(out, 300, seed=3)
    first = await import_annuaire(messaging, path, batch_size=50)
    counts = await snapshot(messaging)
    assert first.rejected == 0 and first.accepted == 300
    assert first.professionals_created == counts["professionals"] > 0
    second = await import_annuaire(messaging, path, batch_size=64)
    assert second.professionals_created == 0 and second.structures_created == 0
    assert second.professionals_updated == counts["professionals"]
    assert await snapshot(messaging) == counts
    assert await messaging.store.count("directory_imports") == 2


async def test_lines_of_one_professional_merge_and_ids_are_derived(
    messaging: Messaging, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        line(),
        line(
            Identifiant_technique_de_la_structure="R10000000002",
            **{
                "Code savoir-faire": "SM26",
                "Adresse e-mail (coord. structure)": "lea.martin@cabinet.mssante.fr",
            },
        ),
    )
    report = await import_annuaire(messaging, path, batch_size=1)  # the two lines in 2 batches
    assert report.professionals_created == 1 and report.professionals_updated == 1
    doc = await messaging.store.get("professionals", "899700367909")
    assert doc is not None
    assert [s["code"] for s in doc.data["specialties"]] == ["SM54", "SM26"]
    assert doc.data["mssante"] == ["lea.martin@aphp.mssante.fr", "lea.martin@cabinet.mssante.fr"]
    assert doc.data["ps_id_nat_oid"] == "1.2.250.1.71.4.2.1"
    site = await messaging.store.get("structures", "1750803447")
    legal = await messaging.store.get("structures", "1750712184")
    assert site is not None and site.data["finess_kind"] == "ET"
    assert site.data["legal_entity"] == "1750712184"
    assert legal is not None and legal.data["finess_kind"] == "EJ"
    assert await messaging.store.count("activities") == 2


async def test_rejected_lines_are_reported_with_their_reason(
    messaging: Messaging, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        line(),
        line(Identifiant_PP="99700367908", Identification_nationale_PP="899700367908"),
        line(Identifiant_PP="10001000016", Identification_nationale_PP="810001000016",
             Numéro_FINESS_site="750803448"),
        line(Identifiant_PP="10001000024", Identification_nationale_PP="810001000024"),
    )  # fmt: skip
    report = await import_annuaire(messaging, path)
    assert (report.accepted, report.rejected) == (2, 2)
    assert report.rejected_by_reason == {"invalid_rpps": 1, "invalid_finess_site": 1}
    assert [(r["line"], r["reason"]) for r in report.rejections] == [
        (3, "invalid_rpps"),
        (4, "invalid_finess_site"),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "nom|prénom|rpps\nMARTIN|Léa|99700367909\n",
        HEADER + "garbage\n" * 3 + line(),
    ],
    ids=["empty", "wrong-header", "mostly-invalid"],
)
async def test_a_malformed_file_is_refused_and_changes_nothing(
    messaging: Messaging, tmp_path: Path, content: str
) -> None:
    await import_annuaire(messaging, write(tmp_path, line(), name="good.txt"))
    before = await snapshot(messaging)
    bad = tmp_path / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(AnnuaireImportRefused):
        await import_annuaire(messaging, bad)
    assert await snapshot(messaging) == before
    assert await messaging.store.count("directory_imports") == 1


def test_the_cli_imports_a_file_and_refuses_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IDENTITY_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("IDENTITY_BUS_URL", f"embedded://{tmp_path}")
    assert cli([str(write(tmp_path, line()))]) == 0
    assert '"professionals_created": 1' in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    bad.write_text("a|b\n1|2\n")
    assert cli([str(bad)]) == 2
    assert "missing column" in capsys.readouterr().out
