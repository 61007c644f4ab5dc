"""IHE XDM packages: the layout and METADATA.XML that validates against the ebRS 3.0 schema
(`lcm.xsd` of the shared IHE schemas), and inbound packages read defensively."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from mss_kit import signed_cda  # type: ignore[import-not-found]

from bsante.mss_connector.cda_header import read_header
from bsante.mss_connector.xdm import (
    METADATA,
    InvalidPackage,
    PackedDocument,
    build_package,
    read_package,
)

SCHEMAS_ENV = "BSANTE_IHE_SCHEMAS"


def ihe_schemas() -> Path | None:
    """`BSANTE_IHE_SCHEMAS`, else a `shared/standards/ihe` folder above the code."""
    configured = os.environ.get(SCHEMAS_ENV)
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "standards" / "ihe"
        if (candidate / "xds" / "ebRS30" / "lcm.xsd").is_file():
            return candidate
    return None


def package(count: int = 1) -> bytes:
    documents = [
        PackedDocument(cda, read_header(cda))
        for cda in (signed_cda(document_id=f"doc-{i:04d}") for i in range(count))
    ]
    return build_package(
        documents,
        sender="secretariat@tilleuls.mssante.fr",
        submission_unique_id="2.25.1234",
        source_id="1.2.250.1.213.1.1.9",
        submitted_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        author_person="MARTIN^Claire",
        recipients=["dr.correspondant@demo.mssante.fr"],
    )


def test_the_layout_uses_iso_9660_names() -> None:
    archive = zipfile.ZipFile(io.BytesIO(package(2)))
    assert sorted(archive.namelist()) == [
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "IHE_XDM/SUBSET01/DOC0002.XML",
        "IHE_XDM/SUBSET01/METADATA.XML",
        "INDEX.HTM",
        "README.TXT",
    ]
    assert package(2) == package(2), "the same input builds the same bytes"


def test_metadata_validates_against_the_ebrs_schema() -> None:
    root = ihe_schemas()
    if root is None:
        pytest.skip(f"no IHE schemas: set {SCHEMAS_ENV} or provide shared/standards/ihe")
    schema = etree.XMLSchema(etree.parse(str(root / "xds" / "ebRS30" / "lcm.xsd")))
    metadata = etree.fromstring(zipfile.ZipFile(io.BytesIO(package(2))).read(METADATA))
    assert schema.validate(metadata), schema.error_log
    rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    entries = metadata.findall(f".//{{{rim}}}ExtrinsicObject")
    assert len(entries) == 2
    ids = {
        e.get("value")
        for e in metadata.iter(f"{{{rim}}}ExternalIdentifier")
        if e.get("identificationScheme") == "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    }
    assert ids == {"279035121518989^^^&1.2.250.1.213.1.4.10&ISO"}, "the INS is the patient id"


def test_a_built_package_reads_back() -> None:
    read = read_package(package(2))
    assert [d.path for d in read.documents] == [
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "IHE_XDM/SUBSET01/DOC0002.XML",
    ]
    assert read.documents[0].content == signed_cda(document_id="doc-0000")
    assert read.documents[0].type_code == "11488-4"
    assert read.documents[0].patient_id == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"


def _zip(entries: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _metadata_naming(uri: str) -> bytes:
    original = zipfile.ZipFile(io.BytesIO(package())).read(METADATA)
    return original.replace(b"DOC0001.XML", uri.encode())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip", "not a zip archive"),
        (_zip({"README.TXT": b"x"}), "no IHE_XDM/SUBSET01/METADATA.XML"),
        (_zip({"../evil.txt": b"x", METADATA: b"<x/>"}), "unsafe path"),
        (_zip({METADATA: b"<x/>"}, link="IHE_XDM/SUBSET01/DOC0001.XML"), "link in package"),
        (_zip({METADATA: b"<<<"}), "not well-formed"),
        (_zip({METADATA: b"<x/>"}), "not a SubmitObjectsRequest"),
        (_zip({METADATA: _metadata_naming("../../etc/passwd")}), "leaves the subset"),
        (_zip({METADATA: _metadata_naming("DOC0001.XML")}), "names no file"),
        (
            _zip(
                {
                    METADATA: _metadata_naming("DOC0001.XML"),
                    "IHE_XDM/SUBSET01/DOC0001.XML": b"<other/>",
                }
            ),
            "hash of",
        ),
        (_zip({METADATA: b"<x/>", "IHE_XDM/SUBSET01/BOMB.XML": b"0" * 5_000_000}), "zip bomb"),
    ],
)
def test_a_bad_package_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidPackage, match=reason.replace("(", r"\(")):
        read_package(data)
