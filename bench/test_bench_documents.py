"""Documents figures: CDA N1 generation + XSD validation per second; schematron validation of one
document with a compiled stylesheet (ms); PDF/A rendering of a 2-page report (60-row table) p50.

Targets (issue #10): ≥ 300 CDA/s on one core; PDF/A p50 ≤ 1 s. The schematron figure excludes the
one-off compilation (tens of seconds, once per process).
"""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest

from bsante.documents import cda, editor, samples
from bsante.documents.conformance import CisisKit, ConformanceValidator, KitNotFound
from bsante.documents.pdf import ReportPage, render_pdf

PDF = b"%PDF-1.7\n" + b"0" * 30_000  # a report-sized payload to encode


@pytest.fixture(scope="module")
def validator() -> ConformanceValidator:
    try:
        kit = CisisKit.locate()
    except KitNotFound as exc:
        pytest.skip(f"CI-SIS test kit absent ({exc})")
    validator = ConformanceValidator(kit)
    validator.prepare(kit.structuration_minimale)
    return validator


def test_cda_n1_generation_and_xsd_per_second(benchmark, validator) -> None:  # type: ignore[no-untyped-def]
    metadata, patient, author = samples.metadata(), samples.patient(), samples.author()

    def run() -> list[str]:
        document = cda.build_cda_n1(metadata, patient, author, PDF)
        return validator.validate_xsd(cda.to_bytes(document))

    assert benchmark.pedantic(run, rounds=300, warmup_rounds=10) == []
    per_second = 1 / benchmark.stats.stats.median
    benchmark.extra_info["documents_per_second"] = round(per_second)
    print(f"\nCDA N1 generation + XSD: {per_second:.0f} documents/s (median)")


def test_schematron_validation_of_one_document(benchmark, validator) -> None:  # type: ignore[no-untyped-def]
    document = cda.build_cda_n1(samples.metadata(), samples.patient(), samples.author(), PDF)
    failed = benchmark.pedantic(
        validator.validate_schematron, args=(document,), rounds=15, warmup_rounds=2
    )
    assert failed == []
    print(f"\nstructurationMinimale: {benchmark.stats.stats.median * 1000:.0f} ms (median)")


def test_pdfa_rendering_of_a_two_page_report(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = ReportPage(
        title="Compte rendu de consultation",
        organisation=samples.organisation(),
        patient=samples.patient(),
        author=samples.author(),
        document_date=samples.SIGNED_AT.date(),
        signed_at=samples.SIGNED_AT,
    )
    body = samples.body(table_rows=60)
    # Without the sample's page break and last section: a 2-page report.
    examen = body.sections[1]
    two_pages = editor.DocumentBody(
        sections=[body.sections[0], examen.model_copy(update={"blocks": examen.blocks[:-1]})]
    )
    html = editor.to_html(two_pages, samples.FIELD_VALUES)
    render_pdf(page, html)  # warm: fonts trimmed, pango loaded
    data = benchmark.pedantic(render_pdf, args=(page, html), rounds=10, warmup_rounds=1)
    assert len(pikepdf.open(io.BytesIO(data)).pages) == 2
    (tmp_path / "report.pdf").write_bytes(data)
    assert pikepdf.pdfa.validate_written(tmp_path / "report.pdf", "2b").passed
    print(f"\nPDF/A-2b, 2 pages: p50 {benchmark.stats.stats.median * 1000:.0f} ms")
