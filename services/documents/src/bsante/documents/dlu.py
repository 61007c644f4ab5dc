"""The structured CI-SIS DLU-EHPAD 2022.01 document (dossier de liaison d'urgence) from the form.

Shape of the ANS kit's `DLU-EHPAD-DLU_2022.01.xml`: the CI-SIS header of `cda.build_header` with
the model's templateIds (HL7 France, CI-SIS, DLU-DLU `1.2.250.1.213.1.1.1.22` version 2022.01),
code 74207-2, the person to notify and the trusted person as informants, the legal
representative as the patient's guardian, the médecin traitant as participant INF/PCP, the
establishment's 24h contact on the performer's organisation, serviceEvent 34117-2; then the
model's sections in its order. Coded answers become entries (the observations of
JDV_ObservationEtatPatient, palliative care, advance directives, BMR, the annexed documents of
JDV_ChecklistDLU); free-text answers (conditions, history, allergies, treatments, vaccinations)
are the narrative of their section, which is what the form collects.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from lxml import etree

from bsante.documents.cda import (
    HL7,
    LOINC,
    OID_PS_ID_NAT,
    TEMPLATE_CI_SIS,
    TEMPLATE_HL7_FRANCE,
    XML_FORBIDDEN,
    XSI,
    DocumentMetadata,
    Organisation,
    Patient,
    Professional,
    ServiceEvent,
    build_header,
)

TEMPLATE_DLU: Final = "1.2.250.1.213.1.1.1.22"
DLU_VERSION: Final = "2022.01"
DLU_TEMPLATE_IDS: Final = (TEMPLATE_HL7_FRANCE, TEMPLATE_CI_SIS, (TEMPLATE_DLU, DLU_VERSION))
DLU_TYPE_CODE: Final = "74207-2"
SERVICE_EVENT_CODE: Final = ("34117-2", "Historique et clinique")

SNOMED_CT: Final = "2.16.840.1.113883.6.96"
CIM_10: Final = "2.16.840.1.113883.6.3"
CHECKLIST_SYSTEM: Final = "1.2.250.1.213.1.1.4.322"
OID_ROLE_CODE: Final = "2.16.840.1.113883.5.88"

# The form's observation ids, with the JDV_ObservationEtatPatient_CISIS concepts (kit's labels),
# grouped as the model's narrative groups them.
OBSERVATION_GROUPS: Final = (
    (
        "État psychique",
        (
            ("can_communicate", "288575003", "capable de communiquer"),
            ("oriented", "247663003", "bien orienté"),
            ("disoriented", "62476001", "désorienté(e)"),
            ("agitation", "24199005", "sensation d'agitation"),
            ("non_compliant", "248043008", "comportement non-conciliant"),
            ("suicidal", "425104003", "comportement suicidaire"),
        ),
    ),
    (
        "Handicaps / déficits",
        (
            ("visual_impairment", "397540003", "malvoyance"),
            ("hearing_loss", "15188001", "perte auditive"),
            ("language_disorder", "62305002", "trouble du langage"),
        ),
    ),
    (
        "Déplacements / transferts",
        (
            ("falls", "161898004", "chutes"),
            ("wandering", "50239007", "errance"),
            ("runaway", "248046000", "fugue"),
            ("restraint", "386423001", "contention physique"),
        ),
    ),
    (
        "Autres risques",
        (
            ("pressure_ulcer_risk", "285304000", "à risque d'escarre"),
            ("swallowing_disorder", "249492002", "fausse route alimentaire"),
        ),
    ),
)

# JDV_ChecklistDLU_CISIS, labels as the kit writes them.
CHECKLIST: Final = (
    ("DLU_006", "Attestation de la carte vitale"),
    ("DLU_007", "Attestation de mutuelle"),
    ("DLU_008", "Photocopie de la carte d’identité"),
    ("DLU_009", "Grille AGGIR (la plus récente)"),
    ("DLU_010", "Photocopie des directives anticipées"),
    ("DLU_011", "Photocopies des ordonnances en cours"),
    ("DLU_012", "Tableau d’administration des médicaments"),
    (
        "DLU_013",
        "Résultats récents de biologie (1 à 3 mois) avec clairance de la créatinine et INR "
        "(si AVK)",
    ),
    ("DLU_014", "CR de la dernière hospitalisation"),
    ("DLU_015", "Fiche BMR (bactérie multi-résistante)"),
    (
        "DLU_016",
        "Fiche ou carnet de suivi des soins (glycémie, pansements, perfusion, ventilation, "
        "nutrition, etc.)",
    ),
    ("DLU_017", "Carnet de suivi du pacemaker ou du défibrilateur implentable"),
    ("DLU_018", "Carte de groupe sanguin (si à jour)"),
    ("DLU_019", "Liste des capacités en soins de l’EHPAD"),
)
_CHECKLIST_LABELS: Final = dict(CHECKLIST)

_MEASURES: Final = {
    "tutelle": "Tutelle",
    "curatelle": "Curatelle",
    "habilitation_familiale": "Habilitation familiale",
    "sauvegarde": "Sauvegarde de justice",
}


class DluInputError(ValueError):
    """The answers cannot make a DLU (a field path and the reason)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def build_dlu(
    metadata: DocumentMetadata,
    patient: Patient,
    author: Professional,
    answers: Mapping[str, Any],
    *,
    legal_authenticator: Professional | None = None,
    custodian: Organisation | None = None,
    attending_physician: Professional | None = None,
    attachments: Mapping[str, tuple[str, bytes]] | None = None,
) -> etree._Element:
    """The DLU-DLU ClinicalDocument from the DLU form's answers (`bsante.forms` ids).

    `metadata.type_code` must be 74207-2; its service event gets the model's code 34117-2.
    `attending_physician`, when the caller knows the médecin traitant's RPPS (directory), gives
    the participant its PSIdNat; otherwise it is the form's name with a local identifier.
    `attachments` maps a checklist code (`DLU_006`...) to `(media type, bytes)`: an annexed
    document carried in the DLU (observationMedia); annexes without bytes are listed only.
    """
    if metadata.type_code != DLU_TYPE_CODE:
        raise DluInputError("type_code", f"a DLU has type {DLU_TYPE_CODE}")
    for code in attachments or {}:
        if code not in _CHECKLIST_LABELS:
            raise DluInputError(f"attachments.{code}", "not a JDV_ChecklistDLU code")
    event = metadata.service_event
    metadata = metadata.model_copy(
        update={
            "service_event": ServiceEvent(
                code=SERVICE_EVENT_CODE[0],
                code_display=SERVICE_EVENT_CODE[1],
                start=event.start,
                end=event.end,
            )
        }
    )
    doc = build_header(
        metadata,
        patient,
        author,
        template_ids=DLU_TEMPLATE_IDS,
        legal_authenticator=legal_authenticator,
        custodian=custodian,
    )
    ids = _Ids(metadata.id_root, metadata.document_id)
    _header_parts(doc, answers, metadata, attending_physician)
    body = _sub(_sub(doc, "component"), "structuredBody")
    for section in _sections(answers, ids, attachments or {}):
        _sub(body, "component").append(section)
    etree.cleanup_namespaces(doc)
    return doc


# -- header ----------------------------------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{HL7}}}{tag}"


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, _q(tag), attributes)


def _el(tag: str, **attributes: str) -> etree._Element:
    return etree.Element(_q(tag), attributes, nsmap={None: HL7, "xsi": XSI})


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    bad = XML_FORBIDDEN.search(text)
    if bad is not None:
        raise DluInputError(field, f"character U+{ord(bad.group()):04X} cannot appear")
    return text


def _group(answers: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = answers.get(name)
    return value if isinstance(value, Mapping) else {}


def _tel(phone: str | None) -> str | None:
    """A `tel:` URI of the digits typed (spaces and dots dropped), None when there are none."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit() or ch == "+")
    return f"tel:{digits}" if any(ch.isdigit() for ch in digits) else None


def _telecom(parent: etree._Element, phone: str | None, use: str | None = None) -> None:
    uri = _tel(phone)
    if uri is None:
        _sub(parent, "telecom", nullFlavor="NASK")
        return
    attributes = {"value": uri}
    if use:
        attributes["use"] = use
    _sub(parent, "telecom", **attributes)


_TITLES: Final = {"dr": "DR", "dr.": "DR", "docteur": "DR", "pr": "PR", "pr.": "PR"}


def _name(parent: etree._Element, text: str) -> None:
    """A PN from the form's one "Nom et prénom" text: words in capitals are the family name.

    The CI-SIS header wants a `family` part; "Sophie NESSI" gives given Sophie, family NESSI, a
    leading "Dr" becomes the suffix DR, and a name without capitals is all family name.
    """
    words = text.split()
    suffix = _TITLES.get(words[0].lower()) if len(words) > 1 else None
    if suffix:
        words = words[1:]
    family = [w for w in words if w.upper() == w and any(c.isalpha() for c in w)]
    given = [w for w in words if w not in family]
    if not family:
        family, given = words, []
    name = _sub(parent, "name")
    if given:
        _sub(name, "given").text = " ".join(given)
    _sub(name, "family").text = " ".join(family)
    if suffix:
        _sub(name, "suffix").text = suffix


def _header_parts(
    doc: etree._Element,
    answers: Mapping[str, Any],
    metadata: DocumentMetadata,
    attending: Professional | None,
) -> None:
    custodian = doc.find(_q("custodian"))
    for group, class_code in (("person_to_notify", "ECON"), ("trusted_person", "NOK")):
        person = _group(answers, group)
        name = _text(person.get("name"), f"answers.{group}.name")
        if name is None:
            continue
        informant = _el("informant")
        entity = _sub(informant, "relatedEntity", classCode=class_code)
        _sub(entity, "addr", nullFlavor="NAV")
        _telecom(entity, _text(person.get("phone"), f"answers.{group}.phone"), "MC")
        _name(_sub(entity, "relatedPerson"), name)
        assert custodian is not None
        custodian.addprevious(informant)

    representative = _group(answers, "legal_representative")
    representative_name = _text(representative.get("name"), "answers.legal_representative.name")
    if representative_name is not None:
        patient = doc.find(f"{_q('recordTarget')}/{_q('patientRole')}/{_q('patient')}")
        assert patient is not None
        guardian = _el("guardian")
        _telecom(guardian, _text(representative.get("phone"), "answers.legal_representative.phone"))
        _name(_sub(guardian, "guardianPerson"), representative_name)
        # guardian comes after birthTime, before birthplace.
        birth_time = patient.find(_q("birthTime"))
        assert birth_time is not None
        birth_time.addnext(guardian)

    physician = _group(answers, "attending_physician")
    physician_name = _text(physician.get("name"), "answers.attending_physician.name")
    if physician_name is None and attending is None:
        raise DluInputError("answers.attending_physician.name", "the médecin traitant is required")
    participant = _el("participant", typeCode="INF")
    _sub(
        participant,
        "functionCode",
        code="PCP",
        displayName="Médecin traitant",
        codeSystem=OID_ROLE_CODE,
    )
    time = _sub(participant, "time", **{f"{{{XSI}}}type": "IVL_TS"})
    _sub(time, "low", value=metadata.effective_time.strftime("%Y%m%d%H%M%S%z"))
    entity = _sub(participant, "associatedEntity", classCode="PROV")
    phone = _text(physician.get("phone"), "answers.attending_physician.phone")
    if attending is not None:
        _sub(entity, "id", root=OID_PS_ID_NAT, extension=attending.ps_id_nat)
        _sub(entity, "addr", nullFlavor="NASK")
        _telecom(entity, phone, "WP")
        person = _sub(_sub(entity, "associatedPerson"), "name")
        _sub(person, "given").text = attending.given_name
        _sub(person, "family").text = attending.family_name
        if attending.suffix:
            _sub(person, "suffix").text = attending.suffix
    else:
        # Known by name only (the form): an identifier local to the document's id root.
        _sub(entity, "id", root=metadata.id_root, extension=f"{metadata.document_id}.pcp")
        _sub(entity, "addr", nullFlavor="NASK")
        _telecom(entity, phone, "WP")
        assert physician_name is not None
        _name(_sub(entity, "associatedPerson"), physician_name)
    documentation = doc.find(_q("documentationOf"))
    assert documentation is not None
    documentation.addprevious(participant)

    # The establishment's 24h contact: a telecom of the performer's organisation ("EC").
    contact = _text(answers.get("contact_24h"), "answers.contact_24h")
    organisation = documentation.find(
        f"{_q('serviceEvent')}/{_q('performer')}/{_q('assignedEntity')}"
        f"/{_q('representedOrganization')}"
    )
    uri = _tel(contact)
    if uri is not None and organisation is not None:
        name = organisation.find(_q("name"))
        assert name is not None
        name.addnext(_el("telecom", value=uri, use="EC"))


# -- sections --------------------------------------------------------------------------------


class _Ids:
    """Stable entry ids: the same document id and path always give the same UUID."""

    def __init__(self, root: str, document_id: str) -> None:
        self._namespace = uuid.uuid5(uuid.NAMESPACE_OID, f"{root}|{document_id}")

    def __call__(self, path: str) -> str:
        return str(uuid.uuid5(self._namespace, path)).upper()


def _section(
    template_ids: Iterable[str], code: str, display: str, title: str
) -> tuple[etree._Element, etree._Element]:
    section = _el("section")
    for template in template_ids:
        _sub(section, "templateId", root=template)
    _sub(section, "code", code=code, displayName=display, codeSystem=LOINC, codeSystemName="LOINC")
    _sub(section, "title").text = title
    return section, _sub(section, "text")


def _paragraphs(text: etree._Element, value: str) -> None:
    for line in value.splitlines() or [value]:
        if line.strip():
            _sub(text, "paragraph").text = line.strip()


def _table(text: etree._Element, header: Iterable[str]) -> etree._Element:
    table = _sub(text, "table", border="0")
    row = _sub(_sub(table, "thead"), "tr")
    for label in header:
        _sub(row, "th").text = label
    return _sub(table, "tbody")


def _row(tbody: etree._Element, *cells: str, content_id: str | None = None) -> None:
    tr = _sub(tbody, "tr")
    for index, cell in enumerate(cells):
        td = _sub(tr, "td")
        if index == 0 and content_id is not None:
            _sub(td, "content", ID=content_id).text = cell
        else:
            td.text = cell


def _yes_no(value: Any) -> str:
    return "non renseigné" if value is None else ("oui" if value else "non")


def _bl(parent: etree._Element, value: Any) -> None:
    if value is None:
        _sub(parent, "value", nullFlavor="NASK", **{f"{{{XSI}}}type": "BL"})
    else:
        _sub(parent, "value", value="true" if value else "false", **{f"{{{XSI}}}type": "BL"})


def _simple_observation(
    section: etree._Element,
    ids: _Ids,
    path: str,
    code: tuple[str, str, str, str],
    reference: str,
    value: Any,
    extra_templates: Iterable[str] = (),
) -> None:
    observation = _sub(_sub(section, "entry"), "observation", classCode="OBS", moodCode="EVN")
    for template in (*extra_templates, "1.3.6.1.4.1.19376.1.5.3.1.4.13", "1.2.250.1.213.1.1.3.48"):
        _sub(observation, "templateId", root=template)
    _sub(observation, "id", root=ids(path))
    system, system_name, concept, display = code
    _sub(
        observation,
        "code",
        code=concept,
        displayName=display,
        codeSystem=system,
        codeSystemName=system_name,
    )
    _sub(_sub(observation, "text"), "reference", value=f"#{reference}")
    _sub(observation, "statusCode", code="completed")
    _sub(observation, "effectiveTime", nullFlavor="NA")
    _bl(observation, value)


def _free_text_section(
    answers: Mapping[str, Any],
    field: str,
    template_ids: tuple[str, ...],
    code: tuple[str, str],
    title: str,
    *,
    required: bool,
) -> etree._Element | None:
    value = _text(answers.get(field), f"answers.{field}")
    if value is None and not required:
        return None
    section, text = _section(template_ids, *code, title)
    _paragraphs(text, value or "Non renseigné")
    return section


def _sections(
    answers: Mapping[str, Any], ids: _Ids, attachments: Mapping[str, tuple[str, bytes]]
) -> Iterable[etree._Element]:
    # [1..1] FR-Dispositions: établissement de santé de préférence.
    section = _free_text_section(
        answers,
        "preferred_hospital",
        ("1.3.6.1.4.1.19376.1.5.3.1.1.13.2.10", "1.2.250.1.213.1.1.2.172"),
        ("11302-7", "Etablissement de santé de préférence"),
        "Établissement de santé de préférence",
        required=True,
    )
    assert section is not None
    yield section
    for field, template_ids, code, title, required in (
        (
            "active_conditions",
            ("2.16.840.1.113883.10.20.1.11", "1.3.6.1.4.1.19376.1.5.3.1.3.6")
            + ("1.2.250.1.213.1.1.2.132",),
            ("11450-4", "Liste des problèmes actifs"),
            "Pathologies en cours",
            False,
        ),
        (
            "medical_history",
            ("1.3.6.1.4.1.19376.1.5.3.1.3.8", "1.2.250.1.213.1.1.2.134"),
            ("11348-0", "Antécédents médicaux"),
            "Antécédents médicaux",
            False,
        ),
        (
            "allergies",
            ("2.16.840.1.113883.10.20.1.2", "1.3.6.1.4.1.19376.1.5.3.1.3.13")
            + ("1.2.250.1.213.1.1.2.137",),
            ("48765-2", "Allergies et hypersensibilités"),
            "Allergies et hypersensibilités",
            False,
        ),
        (
            "long_term_treatments",
            ("2.16.840.1.113883.10.20.1.8", "1.3.6.1.4.1.19376.1.5.3.1.3.19")
            + ("1.2.250.1.213.1.1.2.143",),
            ("10160-0", "Historique de la prise médicamenteuse"),
            "Traitements au long cours",
            True,
        ),
    ):
        free = _free_text_section(answers, field, template_ids, code, title, required=required)
        if free is not None:
            yield free
    yield _palliative_care(answers, ids)
    yield _advance_directives(answers, ids)
    yield _observations(answers, ids)
    yield _bmr(answers, ids)
    vaccinations = _free_text_section(
        answers,
        "vaccinations",
        ("2.16.840.1.113883.10.20.1.6", "1.3.6.1.4.1.19376.1.5.3.1.3.23")
        + ("1.2.250.1.213.1.1.2.147",),
        ("11369-6", "Historique des vaccinations"),
        "Vaccinations",
        required=False,
    )
    if vaccinations is not None:
        yield vaccinations
    comments = _comments(answers)
    if comments is not None:
        yield comments
    yield _annexes(answers, ids, attachments)


def _palliative_care(answers: Mapping[str, Any], ids: _Ids) -> etree._Element:
    care = _group(answers, "palliative_care")
    in_progress = care.get("in_progress")
    section, text = _section(
        ("2.16.840.1.113883.10.20.1.10", "1.3.6.1.4.1.19376.1.5.3.1.3.36")
        + ("1.2.250.1.213.1.1.2.158",),
        "18776-5",
        "Plan de soins",
        "Soins palliatifs",
    )
    tbody = _table(text, ("Plan de soins", "Réponse"))
    _row(tbody, "Soins palliatifs en cours", _yes_no(in_progress), content_id="soins-palliatifs")
    details = _text(care.get("details"), "answers.palliative_care.details")
    if details:
        _paragraphs(text, details)
    if in_progress is not None:
        procedure = _sub(
            _sub(section, "entry"),
            "procedure",
            classCode="PROC",
            moodCode="EVN",
            negationInd="false" if in_progress else "true",
        )
        for template in (
            "1.3.6.1.4.1.19376.1.5.3.1.4.19",
            "2.16.840.1.113883.10.20.1.29",
            "1.2.250.1.213.1.1.3.62",
        ):
            _sub(procedure, "templateId", root=template)
        _sub(procedure, "id", root=ids("palliative_care"))
        _sub(
            procedure,
            "code",
            code="103735009",
            displayName="Soins palliatifs",
            codeSystem=SNOMED_CT,
            codeSystemName="SNOMED CT",
        )
        _sub(_sub(procedure, "text"), "reference", value="#soins-palliatifs")
        _sub(procedure, "statusCode", code="active")
        _sub(procedure, "effectiveTime", nullFlavor="UNK")
    return section


def _advance_directives(answers: Mapping[str, Any], ids: _Ids) -> etree._Element:
    directives = _group(answers, "advance_directives")
    written = directives.get("written")
    section, text = _section(
        ("2.16.840.1.113883.10.20.1.1", "1.3.6.1.4.1.19376.1.5.3.1.3.34")
        + ("1.3.6.1.4.1.19376.1.5.3.1.3.35", "1.2.250.1.213.1.1.2.157"),
        "42348-3",
        "Directives anticipées",
        "Directives anticipées",
    )
    tbody = _table(text, ("Directive", "Choix du patient"))
    _row(tbody, "Directives anticipées rédigées", _yes_no(written), content_id="directives")
    location = _text(directives.get("location"), "answers.advance_directives.location")
    if location:
        _paragraphs(text, f"Lieu de conservation : {location}")
    observation = _sub(_sub(section, "entry"), "observation", classCode="OBS", moodCode="EVN")
    for template in (
        "2.16.840.1.113883.10.20.1.17",
        "1.3.6.1.4.1.19376.1.5.3.1.4.13",
        "1.3.6.1.4.1.19376.1.5.3.1.4.13.7",
        "1.2.250.1.213.1.1.3.54",
    ):
        _sub(observation, "templateId", root=template)
    _sub(observation, "id", root=ids("advance_directives"))
    _sub(
        observation,
        "code",
        code="42348-3",
        displayName="Directives anticipées",
        codeSystem=LOINC,
        codeSystemName="LOINC",
    )
    _sub(_sub(observation, "text"), "reference", value="#directives")
    _sub(observation, "statusCode", code="completed")
    _sub(observation, "effectiveTime", nullFlavor="NA")
    _bl(observation, written)
    return section


def _observations(answers: Mapping[str, Any], ids: _Ids) -> etree._Element:
    observed = _group(answers, "observations")
    section, text = _section(
        ("1.3.6.1.4.1.19376.1.5.3.1.1.21.2.9", "1.3.6.1.4.1.19376.1.7.3.1.1.13.7")
        + ("1.2.250.1.213.1.1.2.163",),
        "42545-4",
        "Evènements observés",
        "Observations",
    )
    number = 0
    for index, (title, observations) in enumerate(OBSERVATION_GROUPS):
        if index:
            _sub(text, "br")
        tbody = _table(text, (title, "Observation"))
        for field, code, display in observations:
            number += 1
            value = observed.get(field)
            _row(tbody, display, _yes_no(value), content_id=f"evr{number}")
            _simple_observation(
                section,
                ids,
                f"observations.{field}",
                (SNOMED_CT, "SNOMED CT", code, display),
                f"evr{number}",
                value,
            )
    return section


def _bmr(answers: Mapping[str, Any], ids: _Ids) -> etree._Element:
    bmr = _group(answers, "bmr")
    carrier = bmr.get("carrier")
    section, text = _section(
        ("1.3.6.1.4.1.19376.1.5.3.1.3.27", "1.3.6.1.4.1.19376.1.5.3.1.3.28")
        + ("1.2.250.1.213.1.1.2.151",),
        "30954-2",
        "Résultats d'examens",
        "Bactérie multirésistante (BMR)",
    )
    tbody = _table(text, ("Question", "Réponse"))
    _row(tbody, "Porteur d'une bactérie multirésistante", _yes_no(carrier), content_id="bmr1")
    details = _text(bmr.get("details"), "answers.bmr.details")
    if details:
        _paragraphs(text, details)
    _simple_observation(
        section,
        ids,
        "bmr",
        (CIM_10, "CIM-10", "U83.71", "Bactérie multirésistante [BMR]"),
        "bmr1",
        carrier,
    )
    return section


def _comments(answers: Mapping[str, Any]) -> etree._Element | None:
    lines: list[str] = []
    comments = _text(answers.get("comments"), "answers.comments")
    if comments:
        lines.extend(comments.splitlines())
    autonomy = _group(answers, "autonomy")
    if autonomy.get("gir") is not None:
        evaluated = autonomy.get("evaluated_on")
        when = f" (grille AGGIR du {_french(str(evaluated))})" if evaluated else ""
        lines.append(f"Autonomie : GIR {int(autonomy['gir'])}{when}")
    coordinating = _group(answers, "coordinating_physician")
    name = _text(coordinating.get("name"), "answers.coordinating_physician.name")
    if name:
        phone = _text(coordinating.get("phone"), "answers.coordinating_physician.phone")
        lines.append(f"Médecin coordonnateur : {name}" + (f", {phone}" if phone else ""))
    representative = _group(answers, "legal_representative")
    measure = _MEASURES.get(str(representative.get("measure")))
    if measure:
        lines.append(f"Mesure de protection : {measure}")
    for group, label in (("person_to_notify", "à prévenir"), ("trusted_person", "de confiance")):
        relationship = _text(
            _group(answers, group).get("relationship"), f"answers.{group}.relationship"
        )
        if relationship:
            lines.append(f"Lien de la personne {label} : {relationship}")
    if not lines:
        return None
    section, text = _section(
        ("2.16.840.1.113883.10.12.201", "1.3.6.1.4.1.19376.1.4.1.2.16", "1.2.250.1.213.1.1.2.73"),
        "55112-7",
        "Commentaire",
        "Commentaires",
    )
    _paragraphs(text, "\n".join(lines))
    return section


def _french(iso_date: str) -> str:
    year, month, day = iso_date[:10].split("-")
    return f"{day}/{month}/{year}"


def _annexes(
    answers: Mapping[str, Any], ids: _Ids, attachments: Mapping[str, tuple[str, bytes]]
) -> etree._Element:
    raw = answers.get("annexes") or []
    annexed = {str(code) for code in raw} | set(attachments)
    unknown = sorted(annexed - set(_CHECKLIST_LABELS))
    if unknown:
        raise DluInputError("answers.annexes", f"not JDV_ChecklistDLU codes: {', '.join(unknown)}")
    section, text = _section(
        ("1.2.250.1.213.1.1.2.37",),
        "55107-7",
        "Documents ajoutés",
        "Checklist des documents annexés au DLU",
    )
    tbody = _table(text, ("Document", "Annexé au DLU"))
    for number, (code, label) in enumerate(CHECKLIST, start=1):
        tr = _sub(tbody, "tr")
        _sub(_sub(tr, "td"), "content", ID=f"doc{number}").text = label
        answer = _sub(tr, "td")
        answer.text = "oui" if code in annexed else "non"
        if code in attachments:
            _sub(answer, "renderMultiMedia", referencedObject=f"annexe-{number}")
        if code not in annexed:
            continue
        organizer = _sub(_sub(section, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
        _sub(organizer, "templateId", root="1.2.250.1.213.1.1.3.18")
        _sub(organizer, "id", root=ids(f"annexes.{code}"))
        _sub(
            organizer,
            "code",
            code="55107-7",
            displayName="Document attaché",
            codeSystem=LOINC,
            codeSystemName="LOINC",
        )
        _sub(organizer, "statusCode", code="completed")
        observation = _sub(
            _sub(organizer, "component"), "observation", classCode="OBS", moodCode="EVN"
        )
        for template in (
            "1.3.6.1.4.1.19376.1.5.3.1.4.13",
            "1.2.250.1.213.1.1.3.48",
            "1.2.250.1.213.1.1.3.48.18",
        ):
            _sub(observation, "templateId", root=template)
        _sub(observation, "id", root=ids(f"annexes.{code}.type"))
        _sub(
            observation,
            "code",
            code="69764-9",
            displayName="Type de document",
            codeSystem=LOINC,
            codeSystemName="LOINC",
        )
        _sub(_sub(observation, "text"), "reference", value=f"#doc{number}")
        _sub(observation, "statusCode", code="completed")
        _sub(observation, "effectiveTime", nullFlavor="NA")
        _sub(
            observation,
            "value",
            code=code,
            displayName=label,
            codeSystem=CHECKLIST_SYSTEM,
            codeSystemName="TA_ASIP",
            **{f"{{{XSI}}}type": "CD"},
        )
        if code in attachments:
            media_type, data = attachments[code]
            media = _sub(
                _sub(organizer, "component"),
                "observationMedia",
                classCode="OBS",
                moodCode="EVN",
                ID=f"annexe-{number}",
            )
            value = _sub(media, "value", mediaType=media_type, representation="B64")
            value.text = base64.b64encode(data).decode("ascii")
    return section
