"""The editor model: validation with field paths, and every block type to HTML and CDA narrative."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lxml import etree
from pydantic import ValidationError

from bsante.documents import cda, samples
from bsante.documents.conformance import CisisKit, ConformanceValidator
from bsante.documents.editor import (
    DocumentBody,
    EditorLimits,
    parse_body,
    to_cda_sections,
    to_cda_structured_body,
    to_html,
)

NS = {"h": cda.HL7}


def _paragraph(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"sections": [{"title": "S", "blocks": [{"type": "paragraph", "runs": list(runs)}]}]}


def _locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str | int, ...]]:
    return [tuple(error["loc"]) for error in exc.value.errors()]


def test_every_block_type_renders_to_html() -> None:
    body = samples.body(table_rows=2)
    page = to_html(body)
    tree = etree.fromstring(page, etree.HTMLParser())

    sections = tree.findall(".//section")
    assert [s.findtext("h2") for s in sections] == [
        "Motif de consultation",
        "Examen clinique",
        "Conduite à tenir",
    ]
    assert sections[0].get("data-code") == "29299-5"
    paragraph = sections[0].find("p")
    assert paragraph.findtext("strong") == "hypertension artérielle"
    assert paragraph.find("em/u").text == "à surveiller"
    assert paragraph.find("span").get("data-field") == "patient.used_given_name"
    assert "«GIR»" in "".join(sections[0].find("div[@class='merge-block']").itertext())
    assert [li.text for li in sections[1].findall("ul/li")] == [
        "Auscultation cardiaque normale",
        "Pas d'œdème des membres inférieurs",
    ]
    table = sections[1].find("table")
    assert [th.text for th in table.findall("thead/tr/th")] == [
        "Date",
        "Tension",
        "Pouls",
        "Commentaire",
    ]
    assert len(table.findall("tbody/tr")) == 2
    assert sections[1].find("div[@class='page-break']") is not None
    assert sections[2].find("ol/li/strong").text == "Bilan biologique "


def test_every_block_type_renders_to_the_cda_narrative_block() -> None:
    body = samples.body(table_rows=2)
    first, second, third = to_cda_sections(body)

    assert first.find("h:code", NS).get("code") == "29299-5"
    assert first.find("h:code", NS).get("codeSystem") == cda.LOINC
    assert first.findtext("h:title", namespaces=NS) == "Motif de consultation"
    paragraph = first.find("h:text/h:paragraph", NS)
    styles = {c.get("styleCode"): c.text for c in paragraph.findall("h:content", NS)}
    assert styles == {"Bold": "hypertension artérielle", "Italics Underline": "à surveiller"}
    assert "«patient.used_given_name»" in "".join(paragraph.itertext())
    assert first.findall("h:text/h:paragraph", NS)[1].text == "«GIR»"

    listing = second.find("h:text/h:list", NS)
    assert listing.get("listType") == "unordered"
    assert len(listing.findall("h:item", NS)) == 2
    table = second.find("h:text/h:table", NS)
    assert [th.text for th in table.findall("h:thead/h:tr/h:th", NS)][0] == "Date"
    rows = table.findall("h:tbody/h:tr", NS)
    assert len(rows) == 2 and len(rows[0].findall("h:td", NS)) == 4
    assert rows[1].find("h:td[4]/h:content", NS).get("styleCode") == "Italics"
    assert second.find("h:text", NS)[-1].tag == f"{{{cda.HL7}}}br"  # the page break

    ordered = third.find("h:text/h:list", NS)
    assert ordered.get("listType") == "ordered"
    assert ordered.find("h:item[2]/h:content", NS).get("styleCode") == "Bold"
    assert second.find("h:code", NS) is None  # no section code given


def test_merge_values_replace_the_placeholders() -> None:
    body = samples.body()
    assert body.fields() == {"patient.used_given_name", "forms.latest_gir"}
    page = to_html(body, samples.FIELD_VALUES)
    assert "«" not in page and "GIR 4 (12/11/2026)" in page and "Dominique" in page
    narrative = b"".join(etree.tostring(s) for s in to_cda_sections(body, samples.FIELD_VALUES))
    assert "«".encode() not in narrative and b"GIR 4 (12/11/2026)" in narrative


def test_html_escapes_text_and_titles() -> None:
    body = parse_body(
        {
            "sections": [
                {
                    "title": "<script>alert(1)</script>",
                    "blocks": [
                        {"type": "paragraph", "runs": [{"text": '<img src=x onerror="y">&'}]}
                    ],
                }
            ]
        }
    )
    page = to_html(body, {"x.y": "<b>"})
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=&quot;y&quot;&gt;&amp;" in page


def test_line_breaks_in_runs_become_br() -> None:
    body = parse_body(_paragraph({"text": "ligne 1\nligne 2", "bold": True}))
    assert "ligne 1<br>ligne 2" in to_html(body)
    content = to_cda_sections(body)[0].find("h:text/h:paragraph/h:content", NS)
    assert content.text == "ligne 1" and content[0].tag.endswith("br")
    assert content[0].tail == "ligne 2"


def test_json_round_trip() -> None:
    body = samples.body()
    again = parse_body(body.model_dump_json())
    assert again == body


def test_unknown_block_type_names_its_path() -> None:
    raw = {
        "sections": [
            {"title": "S", "blocks": [{"type": "paragraph", "runs": []}, {"type": "video"}]}
        ]
    }
    with pytest.raises(ValidationError) as exc:
        parse_body(raw)
    assert _locs(exc) == [("sections", 0, "blocks", 1)]
    assert "video" in exc.value.errors()[0]["msg"]


def test_unknown_inline_kind_and_extra_keys_are_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_body(_paragraph({"text": "a"}, {"kind": "image", "src": "x"}))
    assert _locs(exc) == [("sections", 0, "blocks", 0, "paragraph", "runs", 1)]
    with pytest.raises(ValidationError) as exc:
        parse_body(_paragraph({"text": "a", "colour": "red"}))
    assert _locs(exc) == [("sections", 0, "blocks", 0, "paragraph", "runs", 0, "text", "colour")]


def test_bad_merge_field_name_and_section_code() -> None:
    raw = {
        "sections": [
            {
                "title": "S",
                "code": "LOINC",
                "blocks": [{"type": "merge_field", "field": "__class__"}],
            }
        ]
    }
    with pytest.raises(ValidationError) as exc:
        parse_body(raw)
    assert set(_locs(exc)) == {
        ("sections", 0, "code"),
        ("sections", 0, "blocks", 0, "merge_field", "field"),
    }


def test_ragged_table_is_refused() -> None:
    cell = {"runs": [{"text": "x"}]}
    raw = {
        "sections": [
            {"title": "S", "blocks": [{"type": "table", "header": [cell, cell], "rows": [[cell]]}]}
        ]
    }
    with pytest.raises(ValidationError) as exc:
        parse_body(raw)
    assert _locs(exc) == [("sections", 0, "blocks", 0, "table")]
    assert "row 0 has 1 cells, the header has 2" in exc.value.errors()[0]["msg"]


def test_malformed_json_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_body('{"sections": [')
    assert exc.value.errors()[0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("limits", "raw", "loc"),
    [
        (
            EditorLimits(max_text=10),
            _paragraph({"text": "x" * 11}),
            ("sections", 0, "blocks", 0, "paragraph", "runs", 0, "text", "text"),
        ),
        (
            EditorLimits(max_items=3),
            _paragraph(*[{"text": "x"}] * 4),
            ("sections", 0, "blocks", 0, "paragraph", "runs"),
        ),
        (
            EditorLimits(max_blocks=2),
            {"sections": [{"title": "S", "blocks": [{"type": "page_break"}] * 3}]},
            ("sections", 0, "blocks"),
        ),
        (
            EditorLimits(max_sections=1),
            {"sections": [{"title": "S"}, {"title": "T"}]},
            ("sections",),
        ),
    ],
)
def test_oversized_parts_name_their_path(
    limits: EditorLimits, raw: dict[str, Any], loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_body(raw, limits)
    assert _locs(exc) == [loc]
    assert exc.value.errors()[0]["type"] == "too_large"
    parse_body(raw)  # the default limits accept it


def test_oversized_body_is_refused_before_parsing() -> None:
    raw = json.dumps(_paragraph({"text": "x" * 2_000}))
    with pytest.raises(ValidationError) as exc:
        parse_body(raw, EditorLimits(max_bytes=1_000))
    assert _locs(exc) == [("body",)]
    assert exc.value.errors()[0]["ctx"] == {"what": "bytes", "count": len(raw), "limit": 1_000}


def test_an_empty_body_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_body({"sections": []})
    assert _locs(exc) == [("sections",)]


def test_structured_body_from_the_narrative_is_schema_valid(
    kit: CisisKit,
) -> None:
    # The narrative block must be valid CDA: put it in a header and check it with the XSD.
    document = cda.build_cda_n1(
        samples.metadata(), samples.patient(), samples.author(), b"%PDF-1.7"
    )
    component = document.find("h:component", NS)
    component.remove(component[0])
    component.append(to_cda_structured_body(samples.body(), samples.FIELD_VALUES))
    assert ConformanceValidator(kit).validate_xsd(document) == []


def test_document_body_is_immutable() -> None:
    body: DocumentBody = samples.body()
    with pytest.raises(ValidationError):
        body.sections[0].title = "changed"  # type: ignore[misc]


def test_characters_xml_cannot_carry_are_refused_with_their_path() -> None:
    raw = {
        "sections": [
            {
                "title": "Titre\x01",
                "blocks": [
                    {"type": "paragraph", "runs": [{"text": "a\x00b"}]},
                    {"type": "merge_field", "field": "patient.ipp", "label": "\x0b"},
                ],
            }
        ]
    }
    with pytest.raises(ValidationError) as exc:
        parse_body(raw)
    assert _locs(exc) == [
        ("sections", 0, "title"),
        ("sections", 0, "blocks", 0, "paragraph", "runs", 0, "text", "text"),
        ("sections", 0, "blocks", 1, "merge_field", "label"),
    ]
    assert exc.value.errors()[1]["msg"] == "character U+0000 at 1 cannot appear in a document"
    # Tabs, newlines, accents and typographic characters are fine.
    parse_body(_paragraph({"text": "a\tb\nc « é » — œ ≥ 3 µg"}))
