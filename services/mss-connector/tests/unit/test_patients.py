"""Which XDM patient ids name an INS the connector may look up."""

from __future__ import annotations

from bsante.mss_connector.patients import ins_of


def test_only_an_ins_oid_names_an_ins() -> None:
    assert ins_of("279035121518989^^^&1.2.250.1.213.1.4.10&ISO") == (
        "279035121518989",
        "1.2.250.1.213.1.4.10",
    )
    assert ins_of("279035121518989^^^&1.2.250.1.213.1.4.8&ISO")[1] == "1.2.250.1.213.1.4.8"  # type: ignore[index]
    # A local id (IPP under the structure's OID), a malformed CX or matricule: no look-up.
    assert ins_of("IPP-42^^^&1.2.250.1.999.1&ISO") is None
    assert ins_of("279035121518989") is None
    assert ins_of("27903^^^&1.2.250.1.213.1.4.8&ISO") is None
    assert ins_of(None) is None
