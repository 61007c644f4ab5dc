"""CI-SIS conformance of CDA documents: CDA_extended.xsd (lxml) and the ANS schematrons (Saxon).

The ANS schematrons declare `queryBinding="xslt2"`. They are compiled with the ISO skeleton that
lxml ships (XSLT 1 variant, run by libxslt), then executed as XSLT 2.0 by saxonche:

1. `iso_dsdl_include.xsl`, then `iso_abstract_expand.xsl` on the `.sch`;
2. `queryBinding` set to `xslt` (the XSLT 1 skeleton refuses anything else), then
   `iso_svrl_for_xslt1.xsl`;
3. the generated stylesheet's version set to 2.0 and its `xml:base` set to the `.sch` itself, so
   that the relative `doc('include/voc-...')` value-set look-ups resolve inside the kit while the
   generated file lives in a cache directory (the kit is read-only);
4. compiled by Saxon with optimisation level `-l` (loop lifting off: without it Saxon fails to
   compile some CI-SIS files).

Step 1-3 take seconds and their result is cached on disk; the Saxon compilation takes tens of
seconds for structurationMinimale and is cached in memory (Saxon HE cannot export compiled
stylesheets).
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lxml
import saxonche
from lxml import etree

from bsante.documents.paths import default_cache_dir

KIT_ENV = "BSANTE_CISIS_KIT"

_KIT_RELATIVE = Path("shared", "standards", "ci-sis")
_SKELETON = Path(lxml.__file__).parent / "isoschematron/resources/xsl/iso-schematron-xslt1"
_SVRL = "{http://purl.oclc.org/dsdl/svrl}"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# Bumped when the compilation recipe changes, so that stale cached stylesheets are not reused.
_RECIPE = "iso-xslt1-skeleton/v1"


class KitNotFound(LookupError):
    """The CI-SIS test kit is not where the configuration says (or nowhere to be found)."""


@dataclass(frozen=True)
class Concept:
    code: str
    code_system: str
    display_name: str


@dataclass(frozen=True)
class CisisKit:
    """The ANS test kit (TestContenuCDA): schema, schematrons, value sets, examples."""

    root: Path

    @classmethod
    def locate(cls, start: Path | None = None) -> CisisKit:
        """The kit named by `BSANTE_CISIS_KIT`, else `shared/standards/ci-sis` found walking up."""
        configured = os.environ.get(KIT_ENV)
        if configured:
            root = Path(configured)
            if not (root / "schematrons").is_dir():
                raise KitNotFound(f"{KIT_ENV}={configured} is not a CI-SIS kit (no schematrons/)")
            return cls(root.resolve())
        here = (start or Path(__file__)).resolve()
        for parent in here.parents:
            candidate = parent / _KIT_RELATIVE
            if (candidate / "schematrons").is_dir():
                # Resolved: a kit reached through a symbolic link must still contain its files.
                return cls(candidate.resolve())
        raise KitNotFound(f"no {_KIT_RELATIVE} above {here} and {KIT_ENV} is unset")

    @property
    def cda_xsd(self) -> Path:
        return self.root / "infrastructure" / "cda" / "CDA_extended.xsd"

    @property
    def structuration_minimale(self) -> Path:
        return (
            self.root
            / "schematrons"
            / "profils"
            / "structurationMinimale"
            / "ASIP-STRUCT-MIN-StrucMin.sch"
        )

    def schematron(self, name: str) -> Path:
        """A model schematron by file name, e.g. `CI-SIS_DLU-EHPAD-DLU_2022.01.sch`."""
        path = self.root / "schematrons" / name
        if not path.is_file():
            raise KitNotFound(f"no schematron {name} in the kit")
        return path

    def value_set(self, name: str) -> Path:
        """A value set of `jeuxDeValeurs/` by its JDV name prefix, e.g. `JDV_J07`."""
        matches = sorted((self.root / "jeuxDeValeurs").glob(f"{name}_*.xml"))
        if not matches:
            raise KitNotFound(f"no value set {name} in the kit")
        return matches[0]

    def value_set_concepts(self, name: str) -> dict[str, Concept]:
        """The concepts of a `jeuxDeValeurs/` value set (SVS format), by code."""
        tree = etree.parse(str(self.value_set(name)))
        return {
            node.get("code", ""): Concept(
                node.get("code", ""), node.get("codeSystem", ""), node.get("displayName", "")
            )
            for node in tree.iter("{urn:ihe:iti:svs:2008}Concept")
        }

    def example(self, name: str) -> Path:
        return self.root / "ExemplesCDA" / name


@dataclass(frozen=True)
class FailedAssert:
    """One failed schematron assert, as SVRL reports it."""

    id: str | None
    location: str
    text: str
    test: str
    role: str | None = None

    @property
    def is_error(self) -> bool:
        return self.role not in ("warning", "info", "information")


@dataclass(frozen=True)
class ConformanceReport:
    xsd_errors: list[str] = field(default_factory=list)
    failed_asserts: list[FailedAssert] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.xsd_errors and not self.failed_asserts


@cache
def _skeleton(name: str) -> etree.XSLT:
    return etree.XSLT(etree.parse(str(_SKELETON / name)))


def schematron_to_xslt(sch: Path) -> bytes:
    """Steps 1-3 of the recipe: the `.sch` as an XSLT 2.0 stylesheet producing SVRL."""
    included = _skeleton("iso_dsdl_include.xsl")(etree.parse(str(sch)))
    expanded = _skeleton("iso_abstract_expand.xsl")(included)
    expanded.getroot().set("queryBinding", "xslt")
    generated = _skeleton("iso_svrl_for_xslt1.xsl")(expanded)
    root = generated.getroot()
    root.set("version", "2.0")
    root.set(_XML_BASE, sch.resolve().as_uri())
    return bytes(etree.tostring(generated, xml_declaration=True, encoding="UTF-8"))


def _fingerprint(sch: Path) -> str:
    # The included files change only with a new kit, which rewrites the entry point too.
    stat = sch.stat()
    key = f"{_RECIPE}|{lxml.__version__}|{sch.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class ConformanceValidator:
    """Validates CDA documents; schema and compiled schematrons are reused across calls.

    Thread-safe: validations of one validator are serialised (libxml2 schema validation
    contexts and the Saxon processor are not shared between threads concurrently).
    """

    def __init__(self, kit: CisisKit, cache_dir: Path | None = None) -> None:
        self.kit = kit
        self.cache_dir = cache_dir or default_cache_dir()
        self._lock = threading.RLock()
        self._schema: etree.XMLSchema | None = None
        self._executables: dict[Path, Any] = {}

    # -- XSD --------------------------------------------------------------------------------

    @property
    def schema(self) -> etree.XMLSchema:
        with self._lock:
            if self._schema is None:
                self._schema = _load_schema(self.kit.cda_xsd)
            return self._schema

    def validate_xsd(self, document: bytes | etree._Element) -> list[str]:
        """Schema errors as `line N: message` (empty when valid)."""
        tree = _as_element(document)
        with self._lock:
            schema = self.schema
            if schema.validate(tree):
                return []
            return [f"line {e.line}: {e.message}" for e in schema.error_log]

    # -- Schematron -------------------------------------------------------------------------

    def compiled_xslt_path(self, sch: Path) -> Path:
        """The generated stylesheet of `sch` in the disk cache, generated when missing."""
        relative = sch.resolve().relative_to(self.kit.root) if _inside(sch, self.kit.root) else None
        folder = self.cache_dir / "schematrons" / (relative.parent if relative else Path("other"))
        target = folder / f"{sch.stem}.{_fingerprint(sch)}.xsl"
        if not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            partial.write_bytes(schematron_to_xslt(sch))
            partial.replace(target)  # atomic: concurrent test sessions may compile together
        return target

    def prepare(self, sch: Path) -> None:
        """Compile `sch` now (tens of seconds for structurationMinimale) so later calls are fast."""
        self._executable(sch)

    def _executable(self, sch: Path) -> Any:
        key = sch.resolve()
        with self._lock:
            executable = self._executables.get(key)
            if executable is None:
                xslt = self.compiled_xslt_path(key)
                executable = _xslt_processor().compile_stylesheet(stylesheet_file=str(xslt))
                self._executables[key] = executable
            return executable

    def validate_schematron(
        self, document: bytes | etree._Element, sch: Path | None = None
    ) -> list[FailedAssert]:
        """Failed asserts of `sch` (structurationMinimale by default) on the document."""
        sch = sch or self.kit.structuration_minimale
        text = etree.tostring(_as_element(document), encoding="unicode")
        with self._lock:
            executable = self._executable(sch)
            node = _processor().parse_xml(xml_text=text)
            svrl = executable.transform_to_string(xdm_node=node)
        return _failed_asserts(svrl.encode())

    def validate(
        self, document: bytes | etree._Element, schematrons: tuple[Path, ...] | None = None
    ) -> ConformanceReport:
        """XSD, then each schematron (structurationMinimale when none is given)."""
        element = _as_element(document)
        failed: list[FailedAssert] = []
        for sch in schematrons or (self.kit.structuration_minimale,):
            failed.extend(self.validate_schematron(element, sch))
        return ConformanceReport(self.validate_xsd(element), failed)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _as_element(document: bytes | etree._Element) -> etree._Element:
    if isinstance(document, bytes):
        return etree.fromstring(document, parser=_SAFE_PARSER)
    return document


# No network, no entity expansion: documents come from users.
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@cache
def _load_schema(xsd: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd)))


@cache
def _processor() -> Any:
    processor = saxonche.PySaxonProcessor(license=False)
    processor.set_configuration_property("http://saxon.sf.net/feature/optimizationLevel", "-l")
    return processor


@cache
def _xslt_processor() -> Any:
    return _processor().new_xslt30_processor()


def _svrl_text(node: etree._Element) -> str:
    text = node.find(f"{_SVRL}text")
    return "" if text is None else " ".join("".join(text.itertext()).split())


def _failed_asserts(svrl: bytes) -> list[FailedAssert]:
    report = etree.fromstring(svrl)
    return [
        FailedAssert(
            id=node.get("id"),
            location=node.get("location", ""),
            text=_svrl_text(node),
            test=node.get("test", ""),
            role=node.get("role"),
        )
        for node in report.iter(f"{_SVRL}failed-assert")
    ]


# -- The service's validator -------------------------------------------------------------------

DLU_SCHEMATRON = "CI-SIS_DLU-EHPAD-DLU_2022.01.sch"
_shared_lock = threading.Lock()
_shared: dict[Path, ConformanceValidator] = {}


def shared_validator(kit: CisisKit | None = None) -> ConformanceValidator | None:
    """The process-wide validator of `kit` (located when not given); None without a kit.

    A kit named by `BSANTE_CISIS_KIT` that is not one raises `KitNotFound`: a misconfigured
    kit must not silently turn validation off.
    """
    if kit is None:
        try:
            kit = CisisKit.locate()
        except KitNotFound:
            if os.environ.get(KIT_ENV):
                raise
            return None
    with _shared_lock:
        validator = _shared.get(kit.root)
        if validator is None:
            validator = _shared[kit.root] = ConformanceValidator(kit)
        return validator


def signing_schematrons(kit: CisisKit, *, dlu: bool) -> tuple[Path, ...]:
    """What a document is checked with before signing: structurationMinimale, and its model's."""
    if dlu:
        return (kit.structuration_minimale, kit.schematron(DLU_SCHEMATRON))
    return (kit.structuration_minimale,)


def validate_for_signing(cda_bytes: bytes, *, dlu: bool) -> ConformanceReport | None:
    """XSD and schematrons of a document about to be signed; None when no kit is configured.

    Synchronous and slow the first time (the Saxon compilation, tens of seconds, once per
    process): call `prepare_for_signing` at start and this from a worker thread.
    """
    validator = shared_validator()
    if validator is None:
        return None
    return validator.validate(cda_bytes, signing_schematrons(validator.kit, dlu=dlu))


def prepare_for_signing() -> bool:
    """Compile the signing schematrons now (at service start, off the event loop)."""
    validator = shared_validator()
    if validator is None:
        return False
    for sch in signing_schematrons(validator.kit, dlu=True):
        validator.prepare(sch)
    return True
