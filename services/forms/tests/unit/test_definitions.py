"""Form definitions: the AGGIR form's fast code path agrees with the scoring model on every grid."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

from bsante.forms import definitions
from bsante.forms.definitions import aggir as aggir_form
from bsante.forms.engine import FormContext, without_personal
from bsante.forms.scoring import aggir


def test_fast_codes_match_the_grid_model() -> None:
    rng = random.Random(1)
    values: list[object] = [
        "A",
        "B",
        "C",
        {"S": True, "T": True, "C": True, "H": True},
        {"S": False, "T": True, "C": True, "H": True},
        {"S": False, "T": False, "C": False, "H": False},
    ]
    for _ in range(3000):
        v = lambda: rng.choice(values)  # noqa: E731
        answers = {
            "COH": {"communication": v(), "comportement": v()},
            "ORI": {"temps": v(), "espace": v()},
            "TOI": {"haut": v(), "bas": v()},
            "HAB": {"haut": v(), "moyen": v(), "bas": v()},
            "ALI": {"se_servir": v(), "manger": v()},
            "ELI": {"urinaire": v(), "fecale": v()},
            "TRA": v(),
            "DPI": v(),
            "DPE": v(),
            "COM": v(),
        }
        checked, errors = aggir_form.DEFINITION.check(answers, complete=True)
        assert not errors
        assert aggir_form.codes(checked) == aggir_form.grid(checked).code_tuple()


def test_every_gir_is_reachable_through_the_form() -> None:
    context = FormContext(at=datetime.now(UTC))
    girs = set()
    for combo in itertools.islice(itertools.product("ABC", repeat=8), 0, None, 7):
        coh, ori, toi, hab, ali, eli, tra, dpi = combo
        answers = {
            "COH": {"communication": coh, "comportement": coh},
            "ORI": {"temps": ori, "espace": ori},
            "TOI": {"haut": toi, "bas": toi},
            "HAB": {"haut": hab, "moyen": hab, "bas": hab},
            "ALI": {"se_servir": ali, "manger": ali},
            "ELI": {"urinaire": eli, "fecale": eli},
            "TRA": tra,
            "DPI": dpi,
            "DPE": "A",
            "COM": "A",
        }
        result = aggir_form.compute(answers, context)
        assert result["gir"] == aggir.score_codes("".join(combo)).gir
        girs.add(result["gir"])
    assert girs == {1, 2, 3, 4, 5, 6}


def test_definitions_are_unique_and_versioned() -> None:
    keys = [(d.id, d.version) for d in definitions.ALL]
    assert len(keys) == len(set(keys)) == 9  # eight forms, AGGIR in two versions
    assert definitions.get("aggir") is aggir_form.DEFINITION
    assert definitions.get("aggir", 1) is aggir_form.DEFINITION_V1
    assert definitions.get("aggir", 3) is None
    assert len(definitions.latest()) == 8


def test_personal_fields_are_kept_out_of_event_data() -> None:
    dlu = definitions.get("dlu")
    assert dlu is not None
    data = without_personal(
        dlu,
        {"patient": {"birth_name": "X"}, "trusted_person": {"name": "Y"}, "allergies": "none"},
    )
    assert data == {"allergies": "none"}
    rcp = definitions.get("rcp")
    assert rcp is not None
    data = without_personal(
        rcp, {"participants": [{"name": "Dr X", "profession": "medecin", "specialty": "ORL"}]}
    )
    assert data == {"participants": [{"profession": "medecin", "specialty": "ORL"}]}
