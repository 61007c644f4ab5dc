"""The semi-structured editor model of a document body, and its HTML and CDA narrative renderings.

A body is an ordered list of sections (title, optional LOINC section code) holding blocks:
paragraphs of inline runs (bold, italic, underline) and merge-field references, bulleted and
numbered lists, tables with a header row, merge-field placeholders and page breaks. It is stored
as JSON; `parse_body` validates it against size limits given by the caller (the service's
configuration), and every refusal is a pydantic `ValidationError` naming the field path.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from lxml import etree
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from bsante.documents.cda import HL7, LOINC, XML_FORBIDDEN

FieldName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)
]
SectionCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$")]


@dataclass(frozen=True)
class EditorLimits:
    """Size limits of a body; the service takes them from its settings."""

    max_bytes: int = 512_000
    max_sections: int = 100
    max_blocks: int = 2_000  # per section
    max_items: int = 500  # list items, table rows, table columns, runs of a paragraph
    max_text: int = 20_000  # characters of one run or title


def _limits(info: ValidationInfo) -> EditorLimits:
    context = info.context or {}
    limits = context.get("limits") if isinstance(context, Mapping) else None
    return limits if isinstance(limits, EditorLimits) else EditorLimits()


def _at_most(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise PydanticCustomError(
            "too_large",
            "{what}: {count} is over the limit of {limit}",
            {"what": what, "count": count, "limit": limit},
        )


def _xml_text(value: str) -> str:
    # The same text goes into CDA XML, which cannot hold most control characters.
    bad = XML_FORBIDDEN.search(value)
    if bad is not None:
        raise PydanticCustomError(
            "invalid_character",
            "character {code} at {position} cannot appear in a document",
            {"code": f"U+{ord(bad.group()):04X}", "position": bad.start()},
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextRun(_Model):
    kind: Literal["text"] = "text"
    text: str
    bold: bool = False
    italic: bool = False
    underline: bool = False

    @field_validator("text")
    @classmethod
    def _text_size(cls, value: str, info: ValidationInfo) -> str:
        _at_most(len(value), _limits(info).max_text, "characters")
        return _xml_text(value)


class FieldRun(_Model):
    """A merge field inside a paragraph (e.g. `patient.birth_name`)."""

    kind: Literal["field"]
    field: FieldName


def _inline_kind(value: Any) -> str | None:
    # A run without "kind" is text: the common case stays short in the stored JSON.
    if isinstance(value, Mapping):
        kind = value.get("kind", "text")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


Inline = Annotated[
    Annotated[TextRun, Tag("text")] | Annotated[FieldRun, Tag("field")],
    Discriminator(_inline_kind),
]


def _check_runs(runs: list[Any], info: ValidationInfo) -> list[Any]:
    _at_most(len(runs), _limits(info).max_items, "runs")
    return runs


class Paragraph(_Model):
    type: Literal["paragraph"]
    runs: list[Inline]

    _runs = field_validator("runs")(_check_runs)


class ListItem(_Model):
    runs: list[Inline]

    _runs = field_validator("runs")(_check_runs)


class BulletedList(_Model):
    type: Literal["bulleted_list"]
    items: list[ListItem] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _count(cls, items: list[ListItem], info: ValidationInfo) -> list[ListItem]:
        _at_most(len(items), _limits(info).max_items, "items")
        return items


class NumberedList(BulletedList):
    type: Literal["numbered_list"]  # type: ignore[assignment]


class Cell(_Model):
    runs: list[Inline] = Field(default_factory=list)

    _runs = field_validator("runs")(_check_runs)


class Table(_Model):
    type: Literal["table"]
    header: list[Cell] = Field(min_length=1)
    rows: list[list[Cell]] = Field(default_factory=list)

    @field_validator("header", "rows")
    @classmethod
    def _count(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        _at_most(len(value), _limits(info).max_items, "header cells or rows")
        return value

    @model_validator(mode="after")
    def _rectangular(self) -> Table:
        for index, row in enumerate(self.rows):
            if len(row) != len(self.header):
                raise PydanticCustomError(
                    "ragged_table",
                    "row {index} has {cells} cells, the header has {columns}",
                    {"index": index, "cells": len(row), "columns": len(self.header)},
                )
        return self


class MergeField(_Model):
    """A merge field on its own line (its value may span several lines)."""

    type: Literal["merge_field"]
    field: FieldName
    label: str | None = Field(None, max_length=200)

    @field_validator("label")
    @classmethod
    def _label_text(cls, value: str | None) -> str | None:
        return None if value is None else _xml_text(value)


class PageBreak(_Model):
    type: Literal["page_break"]


Block = Annotated[
    Paragraph | BulletedList | NumberedList | Table | MergeField | PageBreak,
    Field(discriminator="type"),
]


class Section(_Model):
    title: str = Field(min_length=1)
    code: SectionCode | None = None
    blocks: list[Block] = Field(default_factory=list)

    @field_validator("title")
    @classmethod
    def _title_size(cls, value: str, info: ValidationInfo) -> str:
        _at_most(len(value), _limits(info).max_text, "characters")
        return _xml_text(value)

    @field_validator("blocks")
    @classmethod
    def _count(cls, blocks: list[Any], info: ValidationInfo) -> list[Any]:
        _at_most(len(blocks), _limits(info).max_blocks, "blocks")
        return blocks


class DocumentBody(_Model):
    sections: list[Section] = Field(min_length=1)

    @field_validator("sections")
    @classmethod
    def _count(cls, sections: list[Section], info: ValidationInfo) -> list[Section]:
        _at_most(len(sections), _limits(info).max_sections, "sections")
        return sections

    def fields(self) -> set[str]:
        """Every merge field the body refers to."""
        found: set[str] = set()
        for section in self.sections:
            for block in section.blocks:
                if isinstance(block, MergeField):
                    found.add(block.field)
                for runs in _block_runs(block):
                    found.update(run.field for run in runs if isinstance(run, FieldRun))
        return found


def parse_body(
    raw: str | bytes | Mapping[str, Any], limits: EditorLimits | None = None
) -> DocumentBody:
    """A validated body from its JSON (or already decoded JSON); `ValidationError` otherwise."""
    limits = limits or EditorLimits()
    context = {"limits": limits}
    if isinstance(raw, str | bytes):
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > limits.max_bytes:
            raise ValidationError.from_exception_data(
                "DocumentBody",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "too_large",
                            "{what}: {count} is over the limit of {limit}",
                            {"what": "bytes", "count": size, "limit": limits.max_bytes},
                        ),
                        loc=("body",),
                        input="…",
                    )
                ],
            )
        return DocumentBody.model_validate_json(raw, context=context)
    return DocumentBody.model_validate(raw, context=context)


def _block_runs(block: Any) -> Iterable[list[Any]]:
    if isinstance(block, Paragraph):
        yield block.runs
    elif isinstance(block, BulletedList):  # and NumberedList
        for item in block.items:
            yield item.runs
    elif isinstance(block, Table):
        for cell in block.header:
            yield cell.runs
        for row in block.rows:
            for cell in row:
                yield cell.runs


# -- HTML ----------------------------------------------------------------------------------

FieldValues = Mapping[str, str]


def _placeholder(field: str, label: str | None = None) -> str:
    return f"«{label or field}»"


def _html_runs(runs: list[Any], values: FieldValues | None) -> str:
    out: list[str] = []
    for run in runs:
        if isinstance(run, FieldRun):
            out.append(_html_field(run.field, None, values))
            continue
        text = html.escape(run.text).replace("\n", "<br>")
        if run.underline:
            text = f"<u>{text}</u>"
        if run.italic:
            text = f"<em>{text}</em>"
        if run.bold:
            text = f"<strong>{text}</strong>"
        out.append(text)
    return "".join(out)


def _html_field(field: str, label: str | None, values: FieldValues | None) -> str:
    if values is not None and field in values:
        value = html.escape(values[field]).replace("\n", "<br>")
        return f'<span class="merge-field" data-field="{html.escape(field)}">{value}</span>'
    return (
        f'<span class="merge-field unresolved" data-field="{html.escape(field)}">'
        f"{html.escape(_placeholder(field, label))}</span>"
    )


def _html_block(block: Any, values: FieldValues | None) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_html_runs(block.runs, values)}</p>"
    if isinstance(block, NumberedList | BulletedList):
        tag = "ol" if isinstance(block, NumberedList) else "ul"
        items = "".join(f"<li>{_html_runs(i.runs, values)}</li>" for i in block.items)
        return f"<{tag}>{items}</{tag}>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_html_runs(c.runs, values)}</th>" for c in block.header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_html_runs(c.runs, values)}</td>" for c in row) + "</tr>"
            for row in block.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, MergeField):
        return f'<div class="merge-block">{_html_field(block.field, block.label, values)}</div>'
    return '<div class="page-break"></div>'


def to_html(body: DocumentBody, values: FieldValues | None = None) -> str:
    """An HTML fragment (escaped): unresolved merge fields show as «field» placeholders."""
    parts = ['<article class="document-body">']
    for section in body.sections:
        code = f' data-code="{html.escape(section.code)}"' if section.code else ""
        parts.append(f"<section{code}><h2>{html.escape(section.title)}</h2>")
        parts.extend(_html_block(block, values) for block in section.blocks)
        parts.append("</section>")
    parts.append("</article>")
    return "".join(parts)


# -- CDA narrative block ---------------------------------------------------------------------

_STYLE = (("bold", "Bold"), ("italic", "Italics"), ("underline", "Underline"))


def _q(tag: str) -> str:
    return f"{{{HL7}}}{tag}"


def _append_text(parent: etree._Element, text: str) -> None:
    """Mixed content: text goes after the last child, or into the parent when it has none."""
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _cda_text(parent: etree._Element, text: str) -> None:
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if index:
            etree.SubElement(parent, _q("br"))
        if line:
            _append_text(parent, line)


def _cda_runs(parent: etree._Element, runs: list[Any], values: FieldValues | None) -> None:
    for run in runs:
        if isinstance(run, FieldRun):
            _cda_field(parent, run.field, None, values)
            continue
        styles = " ".join(code for name, code in _STYLE if getattr(run, name))
        if styles:
            content = etree.SubElement(parent, _q("content"), styleCode=styles)
            _cda_text(content, run.text)
        else:
            _cda_text(parent, run.text)


def _cda_field(
    parent: etree._Element, field: str, label: str | None, values: FieldValues | None
) -> None:
    if values is not None and field in values:
        _cda_text(parent, values[field])
    else:
        _cda_text(parent, _placeholder(field, label))


def _cda_block(text: etree._Element, block: Any, values: FieldValues | None) -> None:
    def sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
        return etree.SubElement(parent, _q(tag), attributes)

    if isinstance(block, Paragraph):
        _cda_runs(sub(text, "paragraph"), block.runs, values)
    elif isinstance(block, NumberedList | BulletedList):
        kind = "ordered" if isinstance(block, NumberedList) else "unordered"
        listing = sub(text, "list", listType=kind)
        for item in block.items:
            _cda_runs(sub(listing, "item"), item.runs, values)
    elif isinstance(block, Table):
        table = sub(text, "table", border="1")
        head = sub(sub(table, "thead"), "tr")
        for cell in block.header:
            _cda_runs(sub(head, "th"), cell.runs, values)
        tbody = sub(table, "tbody")
        for row in block.rows:
            tr = sub(tbody, "tr")
            for cell in row:
                _cda_runs(sub(tr, "td"), cell.runs, values)
    elif isinstance(block, MergeField):
        _cda_field(sub(text, "paragraph"), block.field, block.label, values)
    else:
        # The narrative block has no page: a page break is only a line break there.
        sub(text, "br")


def to_cda_sections(body: DocumentBody, values: FieldValues | None = None) -> list[etree._Element]:
    """One CDA `section` (code, title, text) per section of the body."""
    sections: list[etree._Element] = []
    for section in body.sections:
        element = etree.Element(_q("section"), nsmap={None: HL7})
        if section.code:
            etree.SubElement(element, _q("code"), code=section.code, codeSystem=LOINC)
        etree.SubElement(element, _q("title")).text = section.title
        text = etree.SubElement(element, _q("text"))
        for block in section.blocks:
            _cda_block(text, block, values)
        sections.append(element)
    return sections


def to_cda_structured_body(body: DocumentBody, values: FieldValues | None = None) -> etree._Element:
    """A `structuredBody` holding one `component/section` per section."""
    structured = etree.Element(_q("structuredBody"), nsmap={None: HL7})
    for section in to_cda_sections(body, values):
        etree.SubElement(structured, _q("component")).append(section)
    return structured
