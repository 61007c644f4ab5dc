"""Report templates: the merge-field catalogue, sandboxed Liquid compilation and merging.

A template is an editor body (`DocumentBody`) whose texts (section titles and text runs) may hold
Liquid markup (`{{ patient.birth_name }}`, `{% if %}`, `{% for %}`) and whose `MergeField` blocks
and `FieldRun` runs name catalogue fields. Each text is its own Liquid template: a tag opened in
one run closes in the same run (styles split runs, so a condition cannot span two runs).

User-authored templates are untrusted. `compile_template` refuses, with every problem located,
syntax errors, variables outside the catalogue (which is also what stops `patient.__class__`
and the like: Liquid reads mapping keys, never Python attributes, and the values are plain
strings), unknown filters and the tags that reach other templates (`include`, `render`).
`render` runs with python-liquid's limits (loop iterations, output size, local namespace,
context depth) and validates the merged body against the editor limits. `trial_render` merges a
template with `sample_values` so that a template whose loops or output break those limits is
refused when it is saved, not only when a document is drafted from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from liquid import Environment
from liquid.exceptions import LiquidError, ResourceLimitError
from liquid.template import BoundTemplate
from pydantic import ValidationError

from bsante.documents.editor import (
    BulletedList,
    DocumentBody,
    EditorLimits,
    FieldRun,
    MergeField,
    Paragraph,
    Table,
    TextRun,
    parse_body,
)

FieldType = Literal["text", "date", "code", "number", "address"]
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldSpec:
    """A merge field of the published catalogue."""

    name: str  # e.g. `patient.birth_name`
    label: str  # French, shown in the template editor
    type: FieldType
    group: str  # the first segment of the name: patient, author, structure, context, forms


def _spec(name: str, label: str, type_: FieldType) -> FieldSpec:
    return FieldSpec(name, label, type_, name.split(".", 1)[0])


_VITALS: tuple[tuple[str, str, FieldType], ...] = (
    ("bp", "tension artérielle", "text"),
    ("pulse", "pouls", "number"),
    ("temperature", "température", "number"),
    ("weight", "poids", "number"),
    ("spo2", "SpO2", "number"),
)

_CATALOGUE: tuple[FieldSpec, ...] = (
    _spec("patient.birth_name", "Nom de naissance", "text"),
    _spec("patient.used_name", "Nom utilisé", "text"),
    _spec("patient.given_names", "Prénoms de naissance", "text"),
    _spec("patient.first_given_name", "Premier prénom de naissance", "text"),
    _spec("patient.used_given_name", "Prénom utilisé", "text"),
    _spec("patient.birth_date", "Date de naissance", "date"),
    _spec("patient.sex", "Sexe (M, F, I)", "code"),
    _spec("patient.ins", "INS (identité qualifiée seulement)", "code"),
    _spec("patient.ipp", "IPP", "code"),
    _spec("patient.address", "Adresse du patient", "address"),
    _spec("author.name", "Nom complet de l'auteur", "text"),
    _spec("author.family_name", "Nom de l'auteur", "text"),
    _spec("author.given_name", "Prénom de l'auteur", "text"),
    _spec("author.profession", "Profession de l'auteur", "text"),
    _spec("author.specialty", "Spécialité de l'auteur", "text"),
    _spec("author.rpps", "RPPS de l'auteur", "code"),
    _spec("structure.name", "Nom de la structure", "text"),
    _spec("structure.finess", "FINESS de la structure", "code"),
    _spec("structure.address", "Adresse de la structure", "address"),
    _spec("structure.phone", "Téléphone de la structure", "text"),
    _spec("context.today", "Date du jour", "date"),
    _spec("context.document_date", "Date du document", "date"),
    _spec("forms.latest_gir", "Dernier GIR", "number"),
    _spec("forms.latest_gir_date", "Date du dernier GIR", "date"),
    _spec("forms.latest_mms", "Dernier score MMS (sur 30)", "number"),
    _spec("forms.latest_mms_date", "Date du dernier MMS", "date"),
    *(
        spec
        for key, label, type_ in _VITALS
        for spec in (
            _spec(f"forms.latest_{key}", f"Dernière mesure : {label}", type_),
            _spec(f"forms.latest_{key}_date", f"Date de la dernière mesure : {label}", "date"),
        )
    ),
)
_BY_NAME: dict[str, FieldSpec] = {spec.name: spec for spec in _CATALOGUE}


def catalogue() -> list[FieldSpec]:
    """Every merge field a template may use, in display order."""
    return list(_CATALOGUE)


# -- Problems --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProblem:
    """One fault of a template, located in the body (`sections.0.blocks.2.runs.1.text`)."""

    path: Path
    message: str
    field: str | None = None  # the merge field at fault, when there is one

    @property
    def location(self) -> str:
        return ".".join(str(part) for part in self.path)

    @property
    def section(self) -> int | None:
        return int(self.path[1]) if len(self.path) > 1 and self.path[0] == "sections" else None

    @property
    def block(self) -> int | None:
        return int(self.path[3]) if len(self.path) > 3 and self.path[2] == "blocks" else None


class TemplateRejected(ValueError):
    """The template (or its merge) was refused; `problems` says where and why."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(f"{p.location}: {p.message}" for p in problems))
        self.problems = problems

    def errors(self) -> list[dict[str, Any]]:
        """The problems in the chassis' `{field, location, message, type}` error shape."""
        return [
            {
                "field": p.location,
                "location": "body",
                "message": p.message,
                "type": "template",
                **({"merge_field": p.field} if p.field else {}),
            }
            for p in self.problems
        ]


# -- The sandboxed environment ---------------------------------------------------------------


class _Sandbox(Environment):
    # Per text of the template. The merged body is then held to the editor's limits as well.
    loop_iteration_limit: ClassVar[int | None] = 1_000
    output_stream_limit: ClassVar[int | None] = 20_000
    local_namespace_limit: ClassVar[int | None] = 20_000
    context_depth_limit: ClassVar[int] = 10
    block_nesting_limit: ClassVar[int] = 10


# Limits of the whole template, on top of python-liquid's per text: the number of texts holding
# markup bounds the total loop iterations (1 000 each), and the merged texts together may not
# exceed the editor's byte limit.
MAX_MARKUP_TEXTS = 500

# Tags that load other templates: there are none to load, and a template reaches nothing else.
_FORBIDDEN_TAGS = ("include", "render")


def _environment() -> Environment:
    environment = _Sandbox()
    for tag in _FORBIDDEN_TAGS:
        environment.tags.pop(tag, None)
    return environment


_ENV = _environment()
_MARKUP = ("{{", "{%")


@dataclass(frozen=True)
class CompiledTemplate:
    """A checked template: the body and the parsed Liquid of each of its texts, by path."""

    body: DocumentBody
    texts: Mapping[Path, BoundTemplate] = field(repr=False)
    fields: frozenset[str]


def _texts(body: DocumentBody) -> Iterator[tuple[Path, str]]:
    """Every text of the body that may hold Liquid, with its path."""
    for s, section in enumerate(body.sections):
        yield ("sections", s, "title"), section.title
        for b, block in enumerate(section.blocks):
            for runs_path, runs in _block_runs(block):
                for r, run in enumerate(runs):
                    if isinstance(run, TextRun):
                        yield ("sections", s, "blocks", b, *runs_path, r, "text"), run.text


def _block_runs(block: Any) -> Iterator[tuple[Path, list[Any]]]:
    if isinstance(block, Paragraph):
        yield ("runs",), block.runs
    elif isinstance(block, BulletedList):  # and NumberedList
        for i, item in enumerate(block.items):
            yield ("items", i, "runs"), item.runs
    elif isinstance(block, Table):
        for c, cell in enumerate(block.header):
            yield ("header", c, "runs"), cell.runs
        for r, row in enumerate(block.rows):
            for c, cell in enumerate(row):
                yield ("rows", r, c, "runs"), cell.runs


def _field_references(body: DocumentBody) -> Iterator[tuple[Path, str]]:
    """MergeField blocks and FieldRun runs, with their paths."""
    for s, section in enumerate(body.sections):
        for b, block in enumerate(section.blocks):
            if isinstance(block, MergeField):
                yield ("sections", s, "blocks", b, "field"), block.field
            for runs_path, runs in _block_runs(block):
                for r, run in enumerate(runs):
                    if isinstance(run, FieldRun):
                        yield ("sections", s, "blocks", b, *runs_path, r, "field"), run.field


def _short(error: LiquidError) -> str:
    return str(error.message if error.message is not None else type(error).__name__)


def compile_template(body: DocumentBody) -> CompiledTemplate:
    """Check a template; `TemplateRejected` lists every problem found."""
    problems: list[TemplateProblem] = []
    used: set[str] = set()
    for path, name in _field_references(body):
        if name in _BY_NAME:
            used.add(name)
        else:
            problems.append(TemplateProblem(path, f"unknown merge field {name}", name))

    compiled: dict[Path, BoundTemplate] = {}
    for path, text in _texts(body):
        if not any(marker in text for marker in _MARKUP):
            continue
        if len(compiled) == MAX_MARKUP_TEXTS:
            problems.append(
                TemplateProblem(
                    path, f"template limit: more than {MAX_MARKUP_TEXTS} texts hold markup"
                )
            )
            break
        try:
            template = _ENV.from_string(text)
        except LiquidError as exc:
            problems.append(TemplateProblem(path, f"template syntax: {_short(exc)}"))
            continue
        analysis = template.analyze(include_partials=False)
        text_problems = len(problems)
        for variables in analysis.globals.values():
            for variable in variables:
                name = str(variable)
                if name in _BY_NAME:
                    used.add(name)
                else:
                    problems.append(TemplateProblem(path, f"unknown merge field {name}", name))
        for name in analysis.filters:
            if name not in _ENV.filters:
                problems.append(TemplateProblem(path, f"unknown filter {name}"))
        if len(problems) == text_problems:
            compiled[path] = template
    if problems:
        raise TemplateRejected(problems)
    return CompiledTemplate(body, compiled, frozenset(used))


# -- Trial rendering -------------------------------------------------------------------------

# A plausible value per field type, long enough that output sizes measured on them are close to
# those of real values.
_SAMPLE_BY_TYPE: dict[FieldType, str] = {
    "text": "DUPONT-DURAND Marie-Christine",
    "date": "28/03/1979",
    "code": "279035121518989",
    "number": "100,0 kg",
    "address": "28 Avenue de Breteuil\n75007 PARIS",
}


def sample_values() -> dict[str, dict[str, str]]:
    """A value for every catalogue field, nested as `merge_values` builds them."""
    values: dict[str, dict[str, str]] = {}
    for spec in _CATALOGUE:
        values.setdefault(spec.group, {})[spec.name.split(".", 1)[1]] = _SAMPLE_BY_TYPE[spec.type]
    return values


def trial_render(compiled: CompiledTemplate, limits: EditorLimits | None = None) -> DocumentBody:
    """Merge the template with `sample_values`: `TemplateRejected` when a limit is broken."""
    return render(compiled, sample_values(), limits)


# -- Rendering -------------------------------------------------------------------------------


def _lookup(values: Mapping[str, Any], name: str) -> str | None:
    node: Any = values
    for segment in name.split("."):
        if not isinstance(node, Mapping) or segment not in node:
            return None
        node = node[segment]
    if node is None:
        return None
    return node if isinstance(node, str) else str(node)


def render(
    compiled: CompiledTemplate, values: Mapping[str, Any], limits: EditorLimits | None = None
) -> DocumentBody:
    """The merged body (no markup, no merge fields left), validated against `limits`.

    `values` is nested as `merge_values` builds it; an absent value merges as nothing (a
    MergeField block without a value is dropped). Refusals are `TemplateRejected`.
    """
    budget = (limits or EditorLimits()).max_bytes
    problems: list[TemplateProblem] = []
    merged_texts: dict[Path, str] = {}
    for path, template in compiled.texts.items():
        try:
            merged = merged_texts[path] = template.render(values)
        except ResourceLimitError as exc:
            problems.append(TemplateProblem(path, f"template limit: {_short(exc)}"))
            continue
        except LiquidError as exc:
            problems.append(TemplateProblem(path, f"template error: {_short(exc)}"))
            continue
        budget -= len(merged.encode())
        if budget < 0:
            problems.append(
                TemplateProblem(path, "template limit: the merged document is over its byte limit")
            )
            break
    if problems:
        raise TemplateRejected(problems)

    raw = compiled.body.model_dump(mode="json")
    for path, text in merged_texts.items():
        _set(raw, path, text)
    for s, section in enumerate(raw["sections"]):
        blocks = []
        for block in section["blocks"]:
            if block["type"] == "merge_field":
                value = _lookup(values, block["field"])
                if value is None:
                    continue
                block = {"type": "paragraph", "runs": [{"text": value}]}
            for runs in _raw_runs(block):
                runs[:] = [
                    {"text": _lookup(values, run["field"]) or ""}
                    if run.get("kind") == "field"
                    else run
                    for run in runs
                ]
            blocks.append(block)
        raw["sections"][s]["blocks"] = blocks
    try:
        return parse_body(raw, limits)
    except ValidationError as exc:
        raise TemplateRejected(
            [
                TemplateProblem(_body_path(err["loc"]), f"merged document: {err['msg']}")
                for err in exc.errors()
            ]
        ) from None


_BLOCK_TAGS = frozenset(
    {"paragraph", "bulleted_list", "numbered_list", "table", "merge_field", "page_break"}
)


def _body_path(loc: tuple[Any, ...]) -> Path:
    """A pydantic error location without its union tags (`blocks.0.paragraph.runs.1.text.text`)."""
    path: list[str | int] = []
    for index, part in enumerate(loc):
        previous = loc[index - 2] if index >= 2 and isinstance(loc[index - 1], int) else None
        if previous == "blocks" and part in _BLOCK_TAGS:
            continue
        if previous == "runs" and part in ("text", "field") and index + 1 < len(loc):
            continue
        path.append(part)
    return tuple(path)


def _set(raw: Any, path: Path, value: str) -> None:
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _raw_runs(block: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    kind = block["type"]
    if kind == "paragraph":
        yield block["runs"]
    elif kind in ("bulleted_list", "numbered_list"):
        for item in block["items"]:
            yield item["runs"]
    elif kind == "table":
        for cell in block["header"]:
            yield cell["runs"]
        for row in block["rows"]:
            for cell in row:
                yield cell["runs"]


# -- Values ----------------------------------------------------------------------------------


def _french_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.date()
    return f"{value:%d/%m/%Y}"


def _french_number(value: Any, decimals: int = 0, unit: str = "") -> str | None:
    if value is None or value == "":
        return None
    number = float(value)
    text = f"{number:.{decimals}f}".replace(".", ",")
    return f"{text} {unit}".rstrip()


def _address_text(address: Mapping[str, Any] | None) -> str | None:
    if not address:
        return None
    lines = [str(line) for line in address.get("lines") or [] if line]
    town = " ".join(str(p) for p in (address.get("postal_code"), address.get("city")) if p)
    if town:
        lines.append(town)
    country = address.get("country")
    if country and str(country).upper() != "FRANCE":
        lines.append(str(country))
    return "\n".join(lines) or None


def _reading(results: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    node: Any = results
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


_VITAL_FORMAT: dict[str, tuple[int, str]] = {
    "pulse": (0, "/min"),
    "temperature": (1, "°C"),
    "weight": (1, "kg"),
    "spo2": (0, "%"),
}


def merge_values(
    patient: Mapping[str, Any],
    author: Mapping[str, Any],
    structure: Mapping[str, Any],
    results: Mapping[str, Any],
    now: datetime,
    *,
    document_date: date | None = None,
) -> dict[str, dict[str, str]]:
    """The nested values of the catalogue's fields, as display strings (French formats).

    Expected keys (absent or None values leave the field absent):

    - `patient`: the patient service's record: `ipp`, `identity_status` (`provisoire`,
      `recuperee`, `validee`, `qualifiee`), `ins: {matricule, oid}`, `traits: {birth_name,
      first_birth_given_name, birth_given_names, used_name, used_first_name, sex, birth_date}`,
      `contact: {address: {lines, postal_code, city, country}}`. The INS merges only when the
      identity is `qualifiee` (RNIV: an unqualified INS is not to be used).
    - `author`: `family_name`, `given_name`, `title` (e.g. `Dr`), `profession`, `specialty`,
      `rpps`.
    - `structure`: `name`, `finess`, `address: {lines, postal_code, city, country}`, `phone`.
    - `results`: `gir: {value, at}`, `mms: {score, at}`, `vitals: {<kind>: {value, at}}` with the
      forms service's vital kinds (`systolic_bp`, `diastolic_bp`, `pulse`, `temperature`,
      `weight`, `spo2`); `at` is a date, a datetime or their ISO text.
    - `now`: the merge time in the structure's time zone (`context.today`); `document_date`
      defaults to its date.
    """
    traits: Mapping[str, Any] = patient.get("traits") or {}
    contact: Mapping[str, Any] = patient.get("contact") or {}
    ins: Mapping[str, Any] = patient.get("ins") or {}
    qualified = patient.get("identity_status") == "qualifiee"
    title = author.get("title")
    full_name = " ".join(
        str(p) for p in (title, author.get("given_name"), author.get("family_name")) if p
    )
    gir = _reading(results, "gir")
    mms = _reading(results, "mms")
    systolic = _reading(results, "vitals", "systolic_bp")
    diastolic = _reading(results, "vitals", "diastolic_bp")
    forms: dict[str, str | None] = {
        "latest_gir": None if gir.get("value") is None else str(gir["value"]),
        "latest_gir_date": _french_date(gir.get("at")),
        "latest_mms": None if mms.get("score") is None else str(mms["score"]),
        "latest_mms_date": _french_date(mms.get("at")),
    }
    if systolic.get("value") is not None and diastolic.get("value") is not None:
        forms["latest_bp"] = f"{float(systolic['value']):.0f}/{float(diastolic['value']):.0f} mmHg"
        forms["latest_bp_date"] = _french_date(systolic.get("at"))
    for kind, (decimals, unit) in _VITAL_FORMAT.items():
        reading = _reading(results, "vitals", kind)
        forms[f"latest_{kind}"] = _french_number(reading.get("value"), decimals, unit)
        forms[f"latest_{kind}_date"] = _french_date(reading.get("at"))

    groups: dict[str, dict[str, str | None]] = {
        "patient": {
            "birth_name": traits.get("birth_name"),
            "used_name": traits.get("used_name"),
            "given_names": traits.get("birth_given_names"),
            "first_given_name": traits.get("first_birth_given_name"),
            "used_given_name": traits.get("used_first_name"),
            "birth_date": _french_date(traits.get("birth_date")),
            "sex": traits.get("sex"),
            "ins": ins.get("matricule") if qualified else None,
            "ipp": patient.get("ipp"),
            "address": _address_text(contact.get("address")),
        },
        "author": {
            "name": full_name or None,
            "family_name": author.get("family_name"),
            "given_name": author.get("given_name"),
            "profession": author.get("profession"),
            "specialty": author.get("specialty"),
            "rpps": author.get("rpps"),
        },
        "structure": {
            "name": structure.get("name"),
            "finess": structure.get("finess"),
            "address": _address_text(structure.get("address")),
            "phone": structure.get("phone"),
        },
        "context": {
            "today": _french_date(now),
            "document_date": _french_date(document_date or now),
        },
        "forms": forms,
    }
    return {
        group: {key: str(value) for key, value in fields.items() if value not in (None, "")}
        for group, fields in groups.items()
    }
