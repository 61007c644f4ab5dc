"""PDF/A-2b report rendering with WeasyPrint: letterhead, patient banner, page x / y, signature.

A plain synchronous function (WeasyPrint blocks for a few hundred milliseconds): the service
calls it in a worker thread, never on the event loop. The font is DejaVu Sans (Debian's
fonts-dejavu-core), found through fontconfig at run time, trimmed once into the cache directory
and embedded (subset) in every PDF.

What does not depend on the document is made once per thread and reused: WeasyPrint's font
configuration (a fontconfig set-up that scans the system's fonts, then loads the four faces) and
the parsed stylesheet. A WeasyPrint font configuration is not meant to be shared between
threads, hence one per worker thread.

WeasyPrint writes two empty `/Pattern` and `/Shading` resource dictionaries that PDF/A
validators reject; they are removed with pikepdf after rendering.
"""

from __future__ import annotations

import atexit
import html
import io
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pikepdf

from bsante.documents.cda import Organisation, Patient, Professional
from bsante.documents.editor import DocumentBody, FieldValues, to_html
from bsante.documents.paths import default_cache_dir

FONT_FAMILY = "DejaVu Sans"
_FACES = (
    ("normal", "normal", ""),
    ("bold", "normal", ":bold"),
    ("normal", "italic", ":italic"),
    ("bold", "italic", ":bold:italic"),
)


class FontNotFound(RuntimeError):
    """fontconfig does not know the report font (install fonts-dejavu-core)."""


@cache
def system_font_files() -> tuple[tuple[str, str, Path], ...]:
    """(weight, style, file) of the four faces of the report font, asked from `fc-match`."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        raise FontNotFound("fc-match is not installed (fontconfig)")
    faces = []
    for weight, style, pattern in _FACES:
        found = subprocess.run(
            [fc_match, f"{FONT_FAMILY}{pattern}", "--format=%{family}|%{file}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        family, _, file = found.partition("|")
        # fc-match always answers: a substitute family means the font is missing.
        if FONT_FAMILY not in family.split(","):
            raise FontNotFound(f"{FONT_FAMILY}{pattern} not found (fontconfig offers {family})")
        faces.append((weight, style, Path(file)))
    return tuple(faces)


@dataclass(frozen=True)
class ReportPage:
    """What surrounds the body on every page and after it."""

    title: str
    organisation: Organisation
    patient: Patient
    author: Professional
    document_date: date
    signed_at: datetime | None = None


# What a French report writes: Latin (with Extended-A), Greek, combining marks, punctuation,
# the euro, letter-like symbols, arrows, maths and geometric shapes. Other characters fall back
# to another installed font (embedded all the same).
_UNICODE_RANGES = (
    (0x20, 0x7E),
    (0xA0, 0x17F),
    (0x2B0, 0x36F),
    (0x370, 0x3FF),
    (0x2000, 0x206F),
    (0x20AC, 0x20AC),
    (0x2100, 0x215F),
    (0x2190, 0x22FF),
    (0x25A0, 0x25FF),
)
_TRIM_VERSION = "1"


def font_files(cache_dir: Path | None = None) -> tuple[tuple[str, str, Path], ...]:
    """The report font's faces trimmed to `_UNICODE_RANGES`, made once into the cache directory.

    DejaVu's full layout tables make WeasyPrint's per-document font subsetting cost about a
    second; subsetting an already trimmed font is several times faster.
    """
    return _trimmed_fonts(cache_dir or default_cache_dir())


@cache
def _trimmed_fonts(cache_dir: Path) -> tuple[tuple[str, str, Path], ...]:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    folder = cache_dir / "fonts"
    trimmed = []
    for weight, style, source in system_font_files():
        stat = source.stat()
        target = folder / f"{source.stem}.{_TRIM_VERSION}.{stat.st_size}.{stat.st_mtime_ns}.ttf"
        if not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            options = subset.Options()
            options.layout_features = ["kern", "liga", "ccmp", "locl", "mark", "mkmk"]
            options.hinting = False
            options.name_IDs = ["*"]
            options.notdef_outline = True
            subsetter = subset.Subsetter(options)
            subsetter.populate(
                unicodes=[u for low, high in _UNICODE_RANGES for u in range(low, high + 1)]
            )
            font = TTFont(str(source))
            subsetter.subset(font)
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            font.save(str(partial))
            partial.replace(target)
        trimmed.append((weight, style, target))
    return tuple(trimmed)


def _font_css(cache_dir: Path | None) -> str:
    return "".join(
        f"@font-face {{ font-family: 'Report Sans'; font-weight: {weight}; "
        f"font-style: {style}; src: url('{file.as_uri()}'); }}"
        for weight, style, file in font_files(cache_dir)
    )


_CSS = """
@page {
  size: A4;
  margin: 42mm 18mm 20mm 18mm;
  @top-center { content: element(header); width: 100%; vertical-align: bottom; }
  @bottom-right {
    content: "page " counter(page) " / " counter(pages);
    font-family: 'Report Sans'; font-size: 8pt; color: #444;
  }
}
html { font-family: 'Report Sans'; font-size: 10pt; line-height: 1.35; color: #111; }
header.running { position: running(header); font-size: 8.5pt; }
.letterhead { display: flex; justify-content: space-between; border-bottom: 1.5pt solid #1d4e89;
  padding-bottom: 2mm; }
.letterhead .name { font-size: 12pt; font-weight: bold; color: #1d4e89; }
.banner { margin-top: 2mm; padding: 1.5mm 2mm; background: #eef2f7; border: 0.5pt solid #9fb3cc; }
.banner .patient { font-weight: bold; }
h1 { font-size: 14pt; margin: 0 0 4mm 0; color: #1d4e89; }
h2 { font-size: 11.5pt; margin: 5mm 0 2mm 0; border-bottom: 0.5pt solid #bbb; }
p { margin: 0 0 2mm 0; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0; font-size: 8.5pt;
  line-height: 1.2; }
th, td { border: 0.5pt solid #888; padding: 0.5mm 1.5mm; text-align: left; vertical-align: top; }
thead { display: table-header-group; }
th { background: #eef2f7; }
tr { break-inside: avoid; }
.page-break { break-after: page; }
.merge-field.unresolved { color: #a33; }
.signature { margin-top: 10mm; break-inside: avoid; border-top: 0.5pt solid #bbb;
  padding-top: 3mm; }
.signature .who { font-weight: bold; }
"""


def _address_line(organisation: Organisation) -> str:
    address = organisation.address
    if address is None:
        return ""
    street = " ".join(filter(None, (address.house_number, address.street_name)))
    return f"{street}, {address.postal_code} {address.city}"


def _person_name(professional: Professional) -> str:
    title = "Dr " if professional.suffix == "DR" else ""
    return f"{title}{professional.given_name} {professional.family_name}"


def report_html(
    page: ReportPage,
    body_html: str,
    cache_dir: Path | None = None,
    *,
    inline_style: bool = True,
) -> str:
    """The whole HTML page around the editor's HTML fragment (`editor.to_html`).

    With `inline_style=False` the page has no `<style>`: `render_pdf` gives WeasyPrint the
    parsed `report_stylesheet()` instead of parsing it again for every document.
    """
    e = html.escape
    organisation, patient, author = page.organisation, page.patient, page.author
    phone = organisation.telecom.value.removeprefix("tel:") if organisation.telecom else ""
    used = patient.used_family_name or patient.birth_family_name
    born = (
        f" {'né' if patient.sex == 'M' else 'née'} {e(patient.birth_family_name)}"
        if patient.used_family_name and patient.used_family_name != patient.birth_family_name
        else ""
    )
    ins = f" · INS {e(patient.ins)}" if patient.ins else ""
    given = patient.used_given_name or patient.birth_given_names[0]
    born_on = f"{'Né' if patient.sex == 'M' else 'Née'} le {patient.birth_date:%d/%m/%Y}"
    address = _address_line(organisation)
    if page.signed_at is not None:
        signed = f"Signé électroniquement le {page.signed_at:%d/%m/%Y à %H:%M}"
    else:
        signed = "Document non signé"
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{e(page.title)}</title>
{f"<style>{report_css(cache_dir)}</style>" if inline_style else ""}</head><body>
<header class="running">
  <div class="letterhead">
    <div><div class="name">{e(organisation.name)}</div><div>{e(address)}</div></div>
    <div>FINESS {e(organisation.finess)}<br>{e(phone)}</div>
  </div>
  <div class="banner"><span class="patient">{e(used)} {e(given)}</span>{born}
    · {born_on} · Sexe {e(patient.sex)}{ins}</div>
</header>
<h1>{e(page.title)}</h1>
<p>Le {page.document_date:%d/%m/%Y}</p>
{body_html}
<div class="signature">
  <div class="who">{e(_person_name(author))}</div>
  <div>{e(author.profession_display)} · RPPS {e(author.rpps)}</div>
  <div>{e(signed)}</div>
</div>
</body></html>"""


def report_css(cache_dir: Path | None = None) -> str:
    """The report's stylesheet: the trimmed font faces, then the page and body rules."""
    return _font_css(cache_dir) + _CSS


_per_thread = threading.local()
# WeasyPrint's font configuration cleans up in `__del__`, which fails once the interpreter is
# tearing modules down: drop the main thread's before that (worker threads end earlier).
atexit.register(lambda: _per_thread.__dict__.clear())


def _prepared(cache_dir: Path | None) -> tuple[Any, Any]:
    """This thread's (FontConfiguration, parsed report stylesheet), made on first use."""
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    folder = cache_dir or default_cache_dir()
    prepared: dict[Path, tuple[Any, Any]] = _per_thread.__dict__.setdefault("prepared", {})
    if folder not in prepared:
        font_config = FontConfiguration()
        prepared[folder] = (font_config, CSS(string=report_css(folder), font_config=font_config))
    return prepared[folder]


def render_pdf(page: ReportPage, body_html: str, *, cache_dir: Path | None = None) -> bytes:
    """A PDF/A-2b of the report (blocking: run it in a worker thread).

    `body_html` is trusted markup: the escaped output of `editor.to_html`.
    """
    from weasyprint import HTML  # imported late: loading pango takes a noticeable moment

    font_config, stylesheet = _prepared(cache_dir)
    document = HTML(string=report_html(page, body_html, cache_dir, inline_style=False))
    rendered = document.write_pdf(
        pdf_variant="pdf/a-2b", stylesheets=[stylesheet], font_config=font_config
    )
    if rendered is None:  # only when given a target to write to
        raise RuntimeError("WeasyPrint returned no PDF")
    return _strip_empty_resources(rendered)


def render_body_pdf(
    page: ReportPage,
    body: DocumentBody,
    values: FieldValues | None = None,
    *,
    cache_dir: Path | None = None,
) -> bytes:
    """`render_pdf` of the editor body (merge fields replaced by `values`)."""
    return render_pdf(page, to_html(body, values), cache_dir=cache_dir)


def _strip_empty_resources(rendered: bytes) -> bytes:
    with pikepdf.open(io.BytesIO(rendered)) as pdf:
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                continue
            # Resource dictionaries are indirect objects or direct values of /Resources.
            for holder in (obj, obj.get("/Resources")):
                if not isinstance(holder, pikepdf.Dictionary):
                    continue
                for key in ("/Pattern", "/Shading"):
                    value = holder.get(key)
                    if isinstance(value, pikepdf.Dictionary) and len(value) == 0:
                        del holder[key]
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()
