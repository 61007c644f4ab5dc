"""PDF/A-2b rendering: pikepdf's validator passes, fonts are embedded DejaVu, pages break."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest
from fontTools.ttLib import TTFont

from bsante.documents import editor, samples
from bsante.documents.pdf import (
    ReportPage,
    font_files,
    render_body_pdf,
    render_pdf,
    report_html,
    system_font_files,
)


def _page(signed: bool = True) -> ReportPage:
    return ReportPage(
        title="Compte rendu de consultation",
        organisation=samples.organisation(),
        patient=samples.patient(),
        author=samples.author(),
        document_date=samples.SIGNED_AT.date(),
        signed_at=samples.SIGNED_AT if signed else None,
    )


def _assert_pdfa(data: bytes, tmp_path: Path) -> pikepdf.Pdf:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    report = pikepdf.pdfa.validate_written(path, "2b")
    assert report.passed, report
    return pikepdf.open(io.BytesIO(data))


def _embedded_families(pdf: pikepdf.Pdf) -> set[str]:
    """Family names read from the embedded font programs (fails on a font not embedded)."""
    families = set()
    for page in pdf.pages:
        for font in page.Resources.get("/Font", {}).values():
            descriptor = font.get("/FontDescriptor") or font.DescendantFonts[0].FontDescriptor
            assert "/FontFile2" in descriptor, f"{font.BaseFont} is not embedded"
            program = TTFont(io.BytesIO(descriptor.FontFile2.read_bytes()))
            families.add(program["name"].getDebugName(1))
    return families


@pytest.fixture(scope="module")
def report_pdf() -> bytes:
    body = samples.body(table_rows=60)
    return render_pdf(_page(), editor.to_html(body, samples.FIELD_VALUES))


def test_the_report_is_pdfa_2b_with_embedded_dejavu(report_pdf: bytes, tmp_path: Path) -> None:
    pdf = _assert_pdfa(report_pdf, tmp_path)
    assert _embedded_families(pdf) == {"DejaVu Sans"}
    with pdf.open_metadata() as meta:
        assert meta.get("pdfaid:part") == "2" and meta.get("pdfaid:conformance") == "B"
        assert meta.get("dc:title") == "Compte rendu de consultation"
    for page in pdf.pages:  # the two empty dictionaries WeasyPrint writes are gone
        assert "/Pattern" not in page.Resources and "/Shading" not in page.Resources


def test_a_page_break_starts_a_new_page(tmp_path: Path) -> None:
    def pages(*blocks: dict[str, object]) -> int:
        body = editor.parse_body({"sections": [{"title": "Conclusion", "blocks": list(blocks)}]})
        return len(_assert_pdfa(render_pdf(_page(), editor.to_html(body)), tmp_path).pages)

    text = {"type": "paragraph", "runs": [{"text": "Poursuivre le traitement."}]}
    assert pages(text, text) == 1
    assert pages(text, {"type": "page_break"}, text) == 2


def test_a_60_row_table_spans_several_pages(report_pdf: bytes) -> None:
    assert len(pikepdf.open(io.BytesIO(report_pdf)).pages) >= 3


def test_the_page_carries_letterhead_banner_page_numbers_and_signature() -> None:
    page = report_html(_page(), "<p>corps</p>")
    assert "Cabinet médical du Parc" in page and "FINESS 750000001" in page
    assert "PAT-TROIS DOMINIQUE" in page and "Née le 28/03/1979" in page
    assert "INS 279035121518989" in page
    assert 'content: "page " counter(page) " / " counter(pages)' in page
    assert "Dr Claire MARTIN" in page and "RPPS 10001234567" in page
    assert "Signé électroniquement le 30/11/2026 à 09:30" in page
    assert "Document non signé" in report_html(_page(signed=False), "")


def test_fonts_are_found_by_fontconfig_and_trimmed_into_the_cache(tmp_path: Path) -> None:
    system = system_font_files()
    assert [path.name for _, _, path in system] == [
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSans-Oblique.ttf",
        "DejaVuSans-BoldOblique.ttf",
    ]
    trimmed = font_files(tmp_path)
    for (_, _, source), (_, _, small) in zip(system, trimmed, strict=True):
        assert small.parent == tmp_path / "fonts"
        assert small.stat().st_size < source.stat().st_size / 2


def test_the_font_set_up_and_stylesheet_are_made_once_per_thread(tmp_path: Path) -> None:
    """Reused across documents of one thread (a WeasyPrint font set-up is not shared)."""
    import threading

    from bsante.documents.pdf import _prepared

    body = editor.parse_body(
        {"sections": [{"title": "Conclusion", "blocks": [{"type": "paragraph", "runs": []}]}]}
    )
    first = _prepared(tmp_path)
    for _ in range(2):
        _assert_pdfa(render_body_pdf(_page(), body, cache_dir=tmp_path), tmp_path)
        assert _prepared(tmp_path) is first
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(_prepared(tmp_path)))
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not first
