"""Where the IHE/OASIS schemas and the CI-SIS value sets are, and what they say of a message.

Neither is copied into the repository: `BSANTE_IHE_SCHEMAS` names the folder holding `xds/`
and `saml/` (default: `shared/standards/ihe` found walking up from the code, as the CI-SIS kit
is found by `bsante.documents.conformance`, whose `BSANTE_CISIS_KIT` is read here too).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

IHE_ENV = "BSANTE_IHE_SCHEMAS"
CISIS_ENV = "BSANTE_CISIS_KIT"
_IHE_RELATIVE = Path("shared", "standards", "ihe")
_CISIS_RELATIVE = Path("shared", "standards", "ci-sis")
_SVS = "{urn:ihe:iti:svs:2008}Concept"


class StandardsNotFound(LookupError):
    """The schemas or the value sets are not where the configuration says."""


def _locate(env: str, relative: Path, marker: str) -> Path:
    configured = os.environ.get(env)
    if configured:
        root = Path(configured)
        if not (root / marker).exists():
            raise StandardsNotFound(f"{env}={configured} has no {marker}")
        return root.resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / relative / marker).exists():
            return parent / relative
    raise StandardsNotFound(f"no {relative} above the code and {env} is unset")


@cache
def ihe_root() -> Path:
    return _locate(IHE_ENV, _IHE_RELATIVE, "xds/IHE/IHEXDSB.xsd")


@cache
def cisis_root() -> Path:
    return _locate(CISIS_ENV, _CISIS_RELATIVE, "jeuxDeValeurs")


@cache
def xds_schema() -> etree.XMLSchema:
    """IHE XDS.b messages with ebRS 3.0 (ProvideAndRegister, Retrieve, ...)."""
    return etree.XMLSchema(etree.parse(str(ihe_root() / "xds" / "IHE" / "IHEXDSB.xsd")))


@cache
def lcm_schema() -> etree.XMLSchema:
    """ebRS 3.0 LCM (SubmitObjectsRequest alone: ITI-57 Update Document Set)."""
    return etree.XMLSchema(etree.parse(str(ihe_root() / "xds" / "ebRS30" / "lcm.xsd")))


@cache
def query_schema() -> etree.XMLSchema:
    """ebRS 3.0 query (AdhocQueryRequest/Response: ITI-18)."""
    return etree.XMLSchema(etree.parse(str(ihe_root() / "xds" / "ebRS30" / "query.xsd")))


@cache
def saml_schema() -> etree.XMLSchema:
    return etree.XMLSchema(
        etree.parse(str(ihe_root() / "saml" / "sstc-saml-schema-assertion-2.0.xsd"))
    )


@cache
def cda_schema() -> etree.XMLSchema:
    return etree.XMLSchema(
        etree.parse(str(cisis_root() / "infrastructure" / "cda" / "CDA_extended.xsd"))
    )


@dataclass(frozen=True)
class Code:
    code: str
    system: str
    display: str


@cache
def value_set(name: str) -> dict[tuple[str, str], Code]:
    """A CI-SIS value set of the kit (`JDV_J07`...), by (code, code system)."""
    matches = sorted((cisis_root() / "jeuxDeValeurs").glob(f"{name}_*.xml"))
    if not matches:
        raise StandardsNotFound(f"no value set {name} in the CI-SIS kit")
    concepts: dict[tuple[str, str], Code] = {}
    for node in etree.parse(str(matches[0])).iter(_SVS):
        code = Code(node.get("code", ""), node.get("codeSystem", ""), node.get("displayName", ""))
        concepts[(code.code, code.system)] = code
    return concepts


def schema_errors(schema: etree.XMLSchema, element: etree._Element) -> list[str]:
    """The first few validation errors of an element (empty when valid)."""
    # A copy: the element may sit inside an envelope, the schema wants it as a root.
    if schema.validate(copy.deepcopy(element)):
        return []
    return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5]]
