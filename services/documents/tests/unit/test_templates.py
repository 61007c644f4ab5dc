"""Report templates: the catalogue, refusals located in the body, limits, and merged values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from bsante.documents import templates
from bsante.documents.editor import DocumentBody, EditorLimits, Paragraph, TextRun, parse_body
from bsante.documents.templates import TemplateRejected, compile_template, merge_values, render

NOW = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)


def _body(*blocks: dict[str, Any], title: str = "Compte rendu") -> DocumentBody:
    return parse_body({"sections": [{"title": title, "blocks": list(blocks)}]})


def _paragraph(*texts: str) -> dict[str, Any]:
    return {"type": "paragraph", "runs": [{"text": text} for text in texts]}


def _patient(status: str = "qualifiee") -> dict[str, Any]:
    return {
        "ipp": "0001234",
        "identity_status": status,
        "ins": {"matricule": "279035121518989", "oid": "1.2.250.1.213.1.4.10"},
        "traits": {
            "birth_name": "PAT-TROIS",
            "first_birth_given_name": "DOMINIQUE",
            "birth_given_names": "DOMINIQUE MARIE-LOUISE",
            "used_name": "MARTIN",
            "used_first_name": "Dominique",
            "sex": "F",
            "birth_date": "1979-03-28",
        },
        "contact": {
            "address": {"lines": ["28 avenue de Breteuil"], "postal_code": "75007", "city": "PARIS"}
        },
    }


AUTHOR = {
    "family_name": "MARTIN",
    "given_name": "Claire",
    "title": "Dr",
    "profession": "Médecin",
    "specialty": "Médecine générale",
    "rpps": "10001234567",
}
STRUCTURE = {
    "name": "EHPAD Les Tilleuls",
    "finess": "750000001",
    "address": {"lines": ["3 rue des Lilas"], "postal_code": "75011", "city": "PARIS"},
    "phone": "01 43 00 00 00",
}
RESULTS = {
    "gir": {"value": 4, "at": "2026-11-12"},
    "mms": {"score": 24, "at": date(2026, 11, 20)},
    "vitals": {
        "systolic_bp": {"value": 128, "at": "2026-11-30T08:00:00+00:00"},
        "diastolic_bp": {"value": 76, "at": "2026-11-30T08:00:00+00:00"},
        "pulse": {"value": 72, "at": "2026-11-30T08:00:00+00:00"},
        "temperature": {"value": 37.5, "at": "2026-11-29T20:00:00+00:00"},
        "weight": {"value": 61.2, "at": "2026-11-25"},
        "spo2": {"value": 97, "at": "2026-11-30T08:00:00+00:00"},
    },
}


def _values(status: str = "qualifiee") -> dict[str, dict[str, str]]:
    return merge_values(_patient(status), AUTHOR, STRUCTURE, RESULTS, NOW)


def _rejected(body: DocumentBody, values: dict[str, Any] | None = None) -> TemplateRejected:
    with pytest.raises(TemplateRejected) as exc:
        render(compile_template(body), values if values is not None else _values())
    return exc.value


def _texts(body: DocumentBody) -> list[str]:
    return [
        run.text
        for section in body.sections
        for block in section.blocks
        if isinstance(block, Paragraph)
        for run in block.runs
        if isinstance(run, TextRun)
    ]


def test_the_catalogue_covers_the_issue_fields_with_french_labels() -> None:
    specs = {spec.name: spec for spec in templates.catalogue()}
    for name in (
        "patient.birth_name",
        "patient.used_name",
        "patient.given_names",
        "patient.birth_date",
        "patient.sex",
        "patient.ins",
        "patient.ipp",
        "patient.address",
        "author.name",
        "author.profession",
        "author.specialty",
        "author.rpps",
        "structure.name",
        "structure.finess",
        "structure.address",
        "structure.phone",
        "context.today",
        "context.document_date",
        "forms.latest_gir",
        "forms.latest_gir_date",
        "forms.latest_mms",
        "forms.latest_mms_date",
        "forms.latest_bp",
        "forms.latest_pulse",
        "forms.latest_temperature",
        "forms.latest_weight",
        "forms.latest_spo2",
        "forms.latest_spo2_date",
    ):
        assert name in specs, name
    assert specs["patient.birth_date"].type == "date"
    assert specs["structure.address"].type == "address"
    assert specs["forms.latest_mms"].type == "number"
    assert specs["patient.birth_name"].label == "Nom de naissance"
    assert {spec.group for spec in specs.values()} == {
        "patient",
        "author",
        "structure",
        "context",
        "forms",
    }
    # Every name is a valid editor field name (MergeField and FieldRun use them).
    _body(*({"type": "merge_field", "field": name} for name in specs))


def test_a_good_template_merges_the_right_values() -> None:
    body = parse_body(
        {
            "sections": [
                {
                    "title": "Consultation du {{ context.document_date }}",
                    "blocks": [
                        _paragraph(
                            "Patiente : {{ patient.birth_name }} ({{ patient.used_name }}), "
                            "née le {{ patient.birth_date }}"
                        ),
                        {
                            "type": "paragraph",
                            "runs": [
                                {"text": "Prénom : "},
                                {"kind": "field", "field": "patient.used_given_name"},
                                {"text": " — GIR ", "bold": True},
                                {"kind": "field", "field": "forms.latest_gir"},
                            ],
                        },
                        {"type": "merge_field", "field": "structure.address", "label": "Adresse"},
                        {
                            "type": "table",
                            "header": [
                                {"runs": [{"text": "Mesure"}]},
                                {"runs": [{"text": "Date"}]},
                            ],
                            "rows": [
                                [
                                    {"runs": [{"text": "TA {{ forms.latest_bp }}"}]},
                                    {"runs": [{"kind": "field", "field": "forms.latest_bp_date"}]},
                                ],
                                [
                                    {"runs": [{"text": "{{ forms.latest_temperature }}"}]},
                                    {"runs": [{"text": "{{ forms.latest_temperature_date }}"}]},
                                ],
                            ],
                        },
                        _paragraph(
                            "{% if forms.latest_mms %}MMS {{ forms.latest_mms }}/30 le "
                            "{{ forms.latest_mms_date }}{% else %}pas de MMS{% endif %}"
                        ),
                        _paragraph(
                            "{% assign names = patient.given_names | split: ' ' %}"
                            "{% for name in names %}"
                            "{{ forloop.index }}:{{ name | capitalize }} {% endfor %}"
                        ),
                        _paragraph("{{ author.name }}, RPPS {{ author.rpps }}"),
                    ],
                }
            ]
        }
    )
    compiled = compile_template(body)
    assert "patient.birth_name" in compiled.fields
    assert "structure.address" in compiled.fields
    merged = render(compiled, _values())
    assert merged.fields() == set()
    section = merged.sections[0]
    assert section.title == "Consultation du 01/12/2026"
    texts = _texts(merged)
    assert texts[0] == "Patiente : PAT-TROIS (MARTIN), née le 28/03/1979"
    assert texts[1:5] == ["Prénom : ", "Dominique", " — GIR ", "4"]
    assert section.blocks[1].runs[2].bold  # type: ignore[union-attr]
    assert texts[5] == "3 rue des Lilas\n75011 PARIS"  # the merge-field block
    table = section.blocks[3]
    cells = [[c.runs[0].text for c in row] for row in table.rows]  # type: ignore[union-attr]
    assert cells == [["TA 128/76 mmHg", "30/11/2026"], ["37,5 °C", "29/11/2026"]]
    assert texts[6] == "MMS 24/30 le 20/11/2026"
    assert texts[7] == "1:Dominique 2:Marie-louise "
    assert texts[8] == "Dr Claire MARTIN, RPPS 10001234567"
    # Merging again gives the same body (the compiled template holds no state).
    assert render(compiled, _values()) == merged


@pytest.mark.parametrize("status", ["provisoire", "recuperee", "validee"])
def test_the_ins_is_absent_unless_the_identity_is_qualifiee(status: str) -> None:
    values = _values(status)
    assert "ins" not in values["patient"]
    assert _values()["patient"]["ins"] == "279035121518989"
    body = _body(
        _paragraph("INS : {{ patient.ins }}."),
        _paragraph("{% if patient.ins %}qualifiée{% else %}non qualifiée{% endif %}"),
        {"type": "paragraph", "runs": [{"text": "["}, {"kind": "field", "field": "patient.ins"}]},
        {"type": "merge_field", "field": "patient.ins"},
    )
    compiled = compile_template(body)
    merged = render(compiled, values)
    assert _texts(merged) == ["INS : .", "non qualifiée", "[", ""]
    assert len(merged.sections[0].blocks) == 3  # the merge-field block without a value is gone
    assert "279035121518989" not in merged.model_dump_json()
    assert _texts(render(compiled, _values()))[0] == "INS : 279035121518989."


@pytest.mark.parametrize(
    "text",
    [
        "{{ patient.__class__ }}",
        "{{ patient.birth_name.__class__.__mro__ }}",
        "{{ patient['__class__'] }}",
        "{{ patient }}",
        "{% assign x = patient.__init__ %}{{ x.__globals__ }}",
        "{% for k in patient.__dict__ %}{{ k }}{% endfor %}",
    ],
)
def test_attempts_to_reach_internals_are_refused_at_compile_time(text: str) -> None:
    body = _body(_paragraph("Bonjour", text))
    with pytest.raises(TemplateRejected) as exc:
        compile_template(body)
    (problem, *_) = exc.value.problems
    assert problem.location == "sections.0.blocks.0.runs.1.text"
    assert (problem.section, problem.block) == (0, 0)
    assert problem.field is not None and problem.field.startswith("patient")
    assert problem.field in problem.message


def test_an_unknown_field_is_named_with_its_location() -> None:
    body = parse_body(
        {
            "sections": [
                {"title": "Un", "blocks": [_paragraph("ok {{ patient.birth_name }}")]},
                {
                    "title": "Deux {{ patient.nir }}",
                    "blocks": [
                        _paragraph("rien"),
                        {
                            "type": "bulleted_list",
                            "items": [{"runs": [{"text": "{{ author.password }}"}]}],
                        },
                    ],
                },
            ]
        }
    )
    with pytest.raises(TemplateRejected) as exc:
        compile_template(body)
    problems = [(p.location, p.field, p.block) for p in exc.value.problems]
    assert problems == [
        ("sections.1.title", "patient.nir", None),
        ("sections.1.blocks.1.items.0.runs.0.text", "author.password", 1),
    ]
    assert "unknown merge field patient.nir" in str(exc.value)
    errors = exc.value.errors()
    assert errors[0]["field"] == "sections.1.title"
    assert errors[0]["merge_field"] == "patient.nir"


def test_a_field_run_or_merge_field_outside_the_catalogue_is_refused() -> None:
    body = _body(
        {"type": "paragraph", "runs": [{"text": "x"}, {"kind": "field", "field": "patient.nir"}]},
        {"type": "merge_field", "field": "forms.latest_glycaemia"},
    )
    with pytest.raises(TemplateRejected) as exc:
        compile_template(body)
    assert [(p.location, p.field) for p in exc.value.problems] == [
        ("sections.0.blocks.0.runs.1.field", "patient.nir"),
        ("sections.0.blocks.1.field", "forms.latest_glycaemia"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{% if patient.ins %}oui", "syntax"),
        ("{{ patient.birth_name | nope }}", "unknown filter nope"),
        ("{% include 'autre' %}", "syntax"),
        ("{% render 'autre' %}", "syntax"),
        ("{{ }}", "syntax"),
    ],
)
def test_syntax_errors_and_outside_tags_are_refused(text: str, expected: str) -> None:
    with pytest.raises(TemplateRejected) as exc:
        compile_template(_body(_paragraph(text)))
    assert [p.location for p in exc.value.problems] == ["sections.0.blocks.0.runs.0.text"]
    assert expected in exc.value.problems[0].message


def test_a_million_iteration_loop_is_refused() -> None:
    rejected = _rejected(_body(_paragraph("{% for i in (1..1000000) %}{% endfor %}")))
    assert "loop iteration limit" in rejected.problems[0].message
    nested = "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}"
    assert "loop iteration limit" in _rejected(_body(_paragraph(nested))).problems[0].message


def test_a_huge_output_is_refused() -> None:
    # 900 iterations stay under the loop limit; their output does not stay under its limit.
    text = "{% for i in (1..900) %}{{ patient.birth_name }} {{ author.name }} {% endfor %}"
    rejected = _rejected(_body(_paragraph(text)))
    assert rejected.problems[0].location == "sections.0.blocks.0.runs.0.text"
    assert "output stream limit" in rejected.problems[0].message


def test_the_merged_body_is_held_to_the_editor_limits() -> None:
    text = "{% for i in (1..300) %}{{ patient.birth_name }}{% endfor %}"  # 2 700 characters
    compiled = compile_template(_body(_paragraph(text)))
    assert len(_texts(render(compiled, _values()))[0]) == 2700
    with pytest.raises(TemplateRejected) as exc:
        render(compiled, _values(), EditorLimits(max_text=1000))
    assert exc.value.problems[0].location == "sections.0.blocks.0.runs.0.text"
    assert "over the limit" in exc.value.problems[0].message


def test_the_whole_merged_body_has_one_output_budget() -> None:
    # Each text stays under python-liquid's output limit; together they do not.
    text = "{% for i in (1..800) %}{{ patient.birth_name }}{% endfor %}"  # 7 200 bytes each
    body = _body(*(_paragraph(text) for _ in range(10)))
    compiled = compile_template(body)
    with pytest.raises(TemplateRejected) as exc:
        render(compiled, _values(), EditorLimits(max_bytes=50_000))
    (problem,) = exc.value.problems
    assert problem.location == "sections.0.blocks.6.runs.0.text"  # the 7th crosses 50 000
    assert "byte limit" in problem.message
    assert len(_texts(render(compiled, _values()))) == 10  # the default limit holds them


def test_the_number_of_texts_holding_markup_is_bounded() -> None:
    many = [_paragraph("{{ patient.ipp }}") for _ in range(templates.MAX_MARKUP_TEXTS)]
    compile_template(_body(*many))
    with pytest.raises(TemplateRejected) as exc:
        compile_template(_body(*many, _paragraph("{{ patient.ipp }}")))
    assert "texts hold markup" in exc.value.problems[0].message


def test_a_value_with_a_control_character_cannot_break_the_document() -> None:
    values = _values()
    values["patient"]["birth_name"] = "PAT\x07"
    rejected = _rejected(_body(_paragraph("{{ patient.birth_name }}")), values)
    assert "cannot appear in a document" in rejected.problems[0].message


def test_merge_values_formats_french_values_and_leaves_unknowns_absent() -> None:
    values = merge_values({"ipp": "42", "traits": {"birth_name": "X"}}, {}, {}, {}, NOW)
    assert values["patient"] == {"birth_name": "X", "ipp": "42"}
    assert values["forms"] == {}
    assert values["context"] == {"today": "01/12/2026", "document_date": "01/12/2026"}
    full = _values()
    assert full["forms"]["latest_weight"] == "61,2 kg"
    assert full["forms"]["latest_spo2"] == "97 %"
    assert full["forms"]["latest_pulse_date"] == "30/11/2026"
    assert full["patient"]["address"] == "28 avenue de Breteuil\n75007 PARIS"
    dated = merge_values({}, {}, {}, {}, NOW, document_date=date(2026, 11, 28))
    assert dated["context"]["document_date"] == "28/11/2026"
    # Every value merged is a catalogue field.
    names = {spec.name for spec in templates.catalogue()}
    assert {f"{g}.{k}" for g, fields in full.items() for k in fields} <= names


def test_the_trial_render_fills_every_catalogue_field_and_meets_the_limits() -> None:
    fields = [_paragraph(f"{{{{ {spec.name} }}}}") for spec in templates.catalogue()]
    merged = _texts(templates.trial_render(compile_template(_body(*fields))))
    assert all(merged), merged  # no field merges as nothing
    loop = "{% for i in (1..1000000) %}{% endfor %}"
    with pytest.raises(TemplateRejected) as exc:
        templates.trial_render(compile_template(_body(_paragraph(loop))))
    assert "loop iteration limit" in exc.value.problems[0].message
