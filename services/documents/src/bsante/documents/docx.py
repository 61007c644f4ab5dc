"""The editor body as a Word document (python-docx), for "enregistrement en divers formats"."""

from __future__ import annotations

import io
from typing import Any

from docx import Document as WordDocument
from docx.enum.text import WD_BREAK

from bsante.documents.editor import (
    BulletedList,
    DocumentBody,
    FieldRun,
    FieldValues,
    MergeField,
    NumberedList,
    Paragraph,
    Table,
)


def _runs(paragraph: Any, runs: list[Any], values: FieldValues | None) -> None:
    for run in runs:
        if isinstance(run, FieldRun):
            paragraph.add_run(_field(run.field, None, values))
            continue
        added = paragraph.add_run(run.text)
        added.bold, added.italic, added.underline = run.bold, run.italic, run.underline


def _field(name: str, label: str | None, values: FieldValues | None) -> str:
    if values is not None and name in values:
        return values[name]
    return f"«{label or name}»"


def to_docx(
    body: DocumentBody, values: FieldValues | None = None, *, title: str | None = None
) -> bytes:
    """A .docx of the body: headings per section, lists, tables with a header row."""
    word = WordDocument()
    if title:
        word.add_heading(title, level=0)
    for section in body.sections:
        word.add_heading(section.title, level=1)
        for block in section.blocks:
            if isinstance(block, Paragraph):
                _runs(word.add_paragraph(), block.runs, values)
            elif isinstance(block, NumberedList | BulletedList):
                style = "List Number" if isinstance(block, NumberedList) else "List Bullet"
                for item in block.items:
                    _runs(word.add_paragraph(style=style), item.runs, values)
            elif isinstance(block, Table):
                table = word.add_table(rows=1 + len(block.rows), cols=len(block.header))
                table.style = "Table Grid"
                for column, cell in enumerate(block.header):
                    target = table.rows[0].cells[column].paragraphs[0]
                    _runs(target, cell.runs, values)
                    for run in target.runs:
                        run.bold = True
                for index, row in enumerate(block.rows, start=1):
                    for column, cell in enumerate(row):
                        _runs(table.rows[index].cells[column].paragraphs[0], cell.runs, values)
            elif isinstance(block, MergeField):
                word.add_paragraph(_field(block.field, block.label, values))
            else:
                word.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()
