"""The structured DLU-EHPAD 2022.01 document: the model's header, sections and entries from the
DLU form's answers, and conformance to the XSD, structurationMinimale and the DLU schematron."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from lxml import etree

from bsante.documents import cda, dlu, samples
from bsante.documents.conformance import (
    DLU_SCHEMATRON,
    CisisKit,
    ConformanceValidator,
    FailedAssert,
)

NS = {"h": cda.HL7}
PDF = b"%PDF-1.7\n% annexe\n"


def _build(answers: dict[str, Any] | None = None, **kwargs: Any) -> etree._Element:
    return dlu.build_dlu(
        samples.dlu_metadata(),
        samples.patient(),
        samples.ehpad_physician(),
        samples.dlu_answers() if answers is None else answers,
        **kwargs,
    )


def _minimal() -> dict[str, Any]:
    """Only what the form requires."""
    full = samples.dlu_answers()
    keep = (
        "patient",
        "attending_physician",
        "contact_24h",
        "active_conditions",
        "allergies",
        "long_term_treatments",
    )
    answers = {key: full[key] for key in keep}
    answers["attending_physician"] = {"name": "MEDIONI"}
    return answers


def _one(node: etree._Element, path: str) -> etree._Element:
    found = node.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path}: {len(found)}"
    return found[0]


def _section(document: etree._Element, template: str) -> etree._Element:
    return _one(
        document,
        f"h:component/h:structuredBody/h:component/h:section[h:templateId/@root='{template}']",
    )


def _texts(failed: list[FailedAssert]) -> str:
    return "\n".join(f.text for f in failed)


@pytest.fixture(scope="module")
def dlu_sch(kit: CisisKit, validator: ConformanceValidator) -> Any:
    sch = kit.schematron(DLU_SCHEMATRON)
    validator.prepare(sch)
    return sch


@pytest.mark.parametrize("variant", ["full", "minimal", "with_attachments", "version_2"])
def test_the_dlu_passes_the_schema_and_both_schematrons(
    validator: ConformanceValidator, kit: CisisKit, dlu_sch: Any, variant: str
) -> None:
    if variant == "minimal":
        document = _build(_minimal())
    elif variant == "with_attachments":
        document = _build(attachments={"DLU_006": ("application/pdf", PDF)})
    elif variant == "version_2":
        document = dlu.build_dlu(
            samples.dlu_metadata(version=2),
            samples.patient(with_ins=False),
            samples.ehpad_physician(),
            samples.dlu_answers(),
            attending_physician=samples.author(),
        )
    else:
        document = _build()
    report = validator.validate(cda.to_bytes(document), (kit.structuration_minimale, dlu_sch))
    assert report.xsd_errors == []
    assert report.failed_asserts == [], _texts(report.failed_asserts)  # warnings included


def test_a_dlu_missing_a_required_section_fails_with_the_named_assert(
    validator: ConformanceValidator, dlu_sch: Any
) -> None:
    document = _build()
    treatments = _section(document, "1.3.6.1.4.1.19376.1.5.3.1.3.19")
    component = treatments.getparent()
    component.getparent().remove(component)
    failed = validator.validate_schematron(document, dlu_sch)
    assert any('La section "Traitements" doit être présente' in f.text for f in failed), _texts(
        failed
    )


def test_an_observation_code_outside_the_value_set_fails(
    validator: ConformanceValidator, dlu_sch: Any
) -> None:
    document = _build()
    code = document.xpath("//h:observation/h:code[@code='161898004']", namespaces=NS)[0]
    code.set("code", "1234567")
    failed = validator.validate_schematron(document, dlu_sch)
    assert any("JDV_ObservationEtatPatient" in f.text for f in failed), _texts(failed)


def test_the_header_of_the_model() -> None:
    document = _build()
    assert document.xpath("h:templateId/@root", namespaces=NS) == [
        "2.16.840.1.113883.2.8.2.1",
        "1.2.250.1.213.1.1.1.1",
        "1.2.250.1.213.1.1.1.22",
    ]
    assert _one(document, "h:templateId[@root='1.2.250.1.213.1.1.1.22']").get("extension") == (
        "2022.01"
    )
    assert _one(document, "h:code").get("code") == "74207-2"
    assert _one(document, "h:documentationOf/h:serviceEvent/h:code").get("code") == "34117-2"
    assert document.xpath("h:component/h:nonXMLBody", namespaces=NS) == []
    # Médecin traitant: participant INF with functionCode PCP, family name from capitals.
    participant = _one(document, "h:participant[@typeCode='INF']")
    assert _one(participant, "h:functionCode").get("code") == "PCP"
    name = _one(participant, "h:associatedEntity/h:associatedPerson/h:name")
    assert (_one(name, "h:given").text, _one(name, "h:family").text) == ("Stéphane", "MEDIONI")
    assert _one(name, "h:suffix").text == "DR"
    assert _one(participant, "h:associatedEntity/h:telecom").get("value") == "tel:0147150001"
    # Person to notify (ECON) and trusted person (NOK), before custodian.
    informants = document.xpath("h:informant/h:relatedEntity", namespaces=NS)
    assert [i.get("classCode") for i in informants] == ["ECON", "NOK"]
    assert _one(informants[1], "h:relatedPerson/h:name/h:family").text == "NESSI"
    assert etree.QName(document.xpath("h:informant", namespaces=NS)[-1].getnext()).localname == (
        "custodian"
    )
    # Legal representative as guardian; the 24h contact on the performer's organisation.
    guardian = _one(document, "h:recordTarget/h:patientRole/h:patient/h:guardian")
    assert _one(guardian, "h:guardianPerson/h:name/h:given").text == "Jeanne"
    organisation = _one(
        document,
        "h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity/h:representedOrganization",
    )
    assert _one(organisation, "h:telecom[@use='EC']").get("value") == "tel:0146000024"


def test_a_known_attending_physician_is_identified_by_its_rpps() -> None:
    document = _build(attending_physician=samples.author())
    entity_id = _one(document, "h:participant/h:associatedEntity/h:id")
    assert (entity_id.get("root"), entity_id.get("extension")) == (
        cda.OID_PS_ID_NAT,
        "810001234567",
    )


def test_sections_come_in_the_model_order_and_optional_ones_only_when_answered() -> None:
    full = _build().xpath(
        "h:component/h:structuredBody/h:component/h:section/h:code/@code", namespaces=NS
    )
    assert full == [
        "11302-7",  # établissement de préférence
        "11450-4",  # pathologies en cours
        "11348-0",  # antécédents
        "48765-2",  # allergies
        "10160-0",  # traitements
        "18776-5",  # soins palliatifs
        "42348-3",  # directives anticipées
        "42545-4",  # observations
        "30954-2",  # BMR
        "11369-6",  # vaccinations
        "55112-7",  # commentaires
        "55107-7",  # documents annexés
    ]
    minimal = _build(_minimal()).xpath(
        "h:component/h:structuredBody/h:component/h:section/h:code/@code", namespaces=NS
    )
    assert "11348-0" not in minimal and "11369-6" not in minimal and "55112-7" not in minimal
    preferred = _section(_build(_minimal()), "1.2.250.1.213.1.1.2.172")
    assert "".join(preferred.find("h:text", NS).itertext()) == "Non renseigné"


def test_free_text_answers_are_the_narrative_of_their_section() -> None:
    section = _section(_build(), "1.2.250.1.213.1.1.2.132")
    paragraphs = [p.text for p in section.findall("h:text/h:paragraph", NS)]
    assert paragraphs == ["Bronchite chronique simple", "Hypertension artérielle"]
    comments = _section(_build(), "1.2.250.1.213.1.1.2.73")
    text = " ".join(comments.find("h:text", NS).itertext())
    assert "GIR 4 (grille AGGIR du 12/11/2026)" in text
    assert "Mesure de protection : Curatelle" in text


def test_observations_are_coded_entries_true_false_or_not_asked() -> None:
    answers = samples.dlu_answers()
    answers["observations"] = {"falls": True, "runaway": False}
    section = _section(_build(answers), "1.3.6.1.4.1.19376.1.7.3.1.1.13.7")
    entries = section.xpath("h:entry/h:observation", namespaces=NS)
    assert len(entries) == 15
    values = {
        _one(e, "h:code").get("code"): (
            _one(e, "h:value").get("value"),
            _one(e, "h:value").get("nullFlavor"),
        )
        for e in entries
    }
    assert values["161898004"] == ("true", None)
    assert values["248046000"] == ("false", None)
    assert values["288575003"] == (None, "NASK")
    # Each entry points at its narrative cell, which says the answer.
    falls = next(e for e in entries if _one(e, "h:code").get("code") == "161898004")
    reference = _one(falls, "h:text/h:reference").get("value").lstrip("#")
    cell = _one(section, f"h:text//h:content[@ID='{reference}']")
    assert cell.text == "chutes"
    assert cell.getparent().getnext().text == "oui"


def test_palliative_care_directives_and_bmr_entries() -> None:
    document = _build()
    procedure = _one(_section(document, "1.2.250.1.213.1.1.2.158"), "h:entry/h:procedure")
    assert procedure.get("negationInd") == "true"  # in_progress: False
    directive = _one(_section(document, "1.2.250.1.213.1.1.2.157"), "h:entry/h:observation")
    assert _one(directive, "h:value").get("value") == "true"
    bmr = _one(_section(document, "1.2.250.1.213.1.1.2.151"), "h:entry/h:observation")
    assert (_one(bmr, "h:code").get("code"), _one(bmr, "h:value").get("value")) == (
        "U83.71",
        "false",
    )


def test_annexes_are_listed_and_attached_documents_carried() -> None:
    document = _build(attachments={"DLU_006": ("application/pdf", PDF)})
    section = _section(document, "1.2.250.1.213.1.1.2.37")
    rows = section.xpath("h:text/h:table/h:tbody/h:tr", namespaces=NS)
    assert len(rows) == len(dlu.CHECKLIST)
    organizers = section.xpath("h:entry/h:organizer", namespaces=NS)
    codes = [_one(o, "h:component/h:observation/h:value").get("code") for o in organizers]
    assert codes == ["DLU_006", "DLU_009"]
    media = _one(organizers[0], "h:component/h:observationMedia/h:value")
    assert media.get("mediaType") == "application/pdf"
    assert base64.b64decode(media.text) == PDF
    assert organizers[1].xpath("h:component/h:observationMedia", namespaces=NS) == []


def test_entry_ids_are_stable_for_a_document() -> None:
    first = _build().xpath("//h:entry//h:id/@root", namespaces=NS)
    assert first == _build().xpath("//h:entry//h:id/@root", namespaces=NS)
    assert len(set(first)) == len(first)


def test_the_codes_come_from_the_kit_value_sets(kit: CisisKit) -> None:
    observations = kit.value_set_concepts("JDV_ObservationEtatPatient")
    for _, group in dlu.OBSERVATION_GROUPS:
        for _, code, display in group:
            assert observations[code].code_system == dlu.SNOMED_CT
            assert observations[code].display_name == display
    checklist = kit.value_set_concepts("JDV_ChecklistDLU")
    assert set(checklist) == {code for code, _ in dlu.CHECKLIST}
    for code, display in dlu.CHECKLIST:
        assert checklist[code].code_system == dlu.CHECKLIST_SYSTEM
        assert checklist[code].display_name == display
    j07 = kit.value_set_concepts("JDV_J07")
    assert j07[dlu.DLU_TYPE_CODE].display_name == cda.DOCUMENT_TYPES[dlu.DLU_TYPE_CODE]


def test_the_form_definition_and_the_document_agree() -> None:
    # The answers are the forms service's DLU: same observation ids and codes, same annexes.
    definition = pytest.importorskip("bsante.forms.definitions.dlu")
    ours = {field: code for _, group in dlu.OBSERVATION_GROUPS for field, code, _ in group}
    assert ours == {field: code for field, code, _ in definition.OBSERVATIONS}
    assert [code for code, _ in dlu.CHECKLIST] == [code for code, _ in definition.CHECKLIST]
    field_ids = {field.id for field in definition.FIELDS}
    assert set(samples.dlu_answers()) <= field_ids


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attending_physician": {}}, "answers.attending_physician.name"),
        ({"annexes": ["DLU_999"]}, "answers.annexes"),
        ({"comments": "bip\x07"}, "answers.comments"),
    ],
)
def test_answers_that_cannot_make_a_dlu_are_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(dlu.DluInputError) as exc:
        _build({**samples.dlu_answers(), **change})
    assert exc.value.field == field


def test_only_the_dlu_type_and_checklist_attachments() -> None:
    with pytest.raises(dlu.DluInputError, match="74207-2"):
        dlu.build_dlu(
            samples.metadata(), samples.patient(), samples.author(), samples.dlu_answers()
        )
    with pytest.raises(dlu.DluInputError, match="JDV_ChecklistDLU"):
        _build(attachments={"XYZ": ("application/pdf", PDF)})


def test_a_phone_without_digits_is_not_asked_rather_than_a_broken_uri() -> None:
    answers = samples.dlu_answers()
    answers["person_to_notify"] = {"name": "Sophie NESSI", "phone": "inconnu"}
    answers["contact_24h"] = "voir accueil"
    document = _build(answers)
    telecom = _one(document, "h:informant[1]/h:relatedEntity/h:telecom")
    assert (telecom.get("nullFlavor"), telecom.get("value")) == ("NASK", None)
    assert document.xpath("//h:telecom[@use='EC']", namespaces=NS) == []
