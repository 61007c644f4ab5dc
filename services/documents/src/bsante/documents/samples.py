"""Synthetic inputs (the ANS kit's test identity, a fictitious structure): tests, bench, demo."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from bsante.documents.cda import (
    Address,
    DocumentMetadata,
    Organisation,
    Patient,
    Professional,
    ServiceEvent,
    Telecom,
)
from bsante.documents.editor import DocumentBody, parse_body

# A private-arc OID root for the demo documents (never a registered one).
DEMO_ID_ROOT = "1.2.250.1.999.1.1"
DEMO_IPP_ROOT = "1.2.250.1.999.1.2"
SIGNED_AT = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def organisation() -> Organisation:
    return Organisation(
        finess="750000001",
        name="Cabinet médical du Parc",
        address=Address(
            house_number="3", street_name="Rue des Lilas", postal_code="75011", city="PARIS"
        ),
        telecom=Telecom(value="tel:0143000000", use="WP"),
    )


def author() -> Professional:
    return Professional(
        rpps="10001234567",
        family_name="MARTIN",
        given_name="Claire",
        prefix="MME",
        suffix="DR",
        profession_code="G15_10/SM54",
        profession_display="Médecin - Médecine Générale (SM)",
        organisation=organisation(),
        telecom=Telecom(value="tel:0143000001", use="WP"),
    )


def patient(*, with_ins: bool = True) -> Patient:
    """The kit's test patient (INS-NIR of test, OID 1.2.250.1.213.1.4.10)."""
    ins: dict[str, Any] = (
        {"ins": "279035121518989", "ins_oid": "1.2.250.1.213.1.4.10"} if with_ins else {}
    )
    return Patient(
        **ins,
        ipp="0001234",
        ipp_root=DEMO_IPP_ROOT,
        birth_family_name="PAT-TROIS",
        birth_given_names=["DOMINIQUE", "MARIE-LOUISE"],
        used_family_name="PAT-TROIS",
        used_given_name="DOMINIQUE",
        sex="F",
        birth_date=date(1979, 3, 28),
        birthplace_cog="51215",
        birthplace_city="DOMPREMY",
        address=Address(
            house_number="28",
            street_name="Avenue de Breteuil",
            postal_code="75007",
            city="PARIS",
        ),
        telecoms=[Telecom(value="tel:0144534551", use="H")],
    )


def metadata(*, version: int = 1, document_id: str = "doc-0001") -> DocumentMetadata:
    return DocumentMetadata(
        id_root=DEMO_ID_ROOT,
        document_id=document_id,
        set_id="set-0001",
        version=version,
        parent_document_id=None if version == 1 else f"doc-000{version - 1}",
        type_code="11488-4",
        title="Compte rendu de consultation",
        effective_time=SIGNED_AT,
        authored_at=SIGNED_AT - timedelta(minutes=10),
        signed_at=SIGNED_AT,
        service_event=ServiceEvent(
            start=SIGNED_AT - timedelta(minutes=40), end=SIGNED_AT - timedelta(minutes=15)
        ),
        encounter_start=SIGNED_AT - timedelta(minutes=40),
    )


def _cell(text: str, **style: bool) -> dict[str, Any]:
    return {"runs": [{"text": text, **style}]}


def body(*, table_rows: int = 3) -> DocumentBody:
    """A consultation report using every block type (and `table_rows` rows of vitals)."""
    rows = [
        [
            _cell(f"{(i % 28) + 1:02d}/11/2026"),
            _cell(f"{118 + i % 25}/{72 + i % 12} mmHg"),
            _cell(f"{60 + i % 30} /min"),
            _cell("RAS" if i % 7 else "Contrôle demandé", italic=bool(i % 7)),
        ]
        for i in range(table_rows)
    ]
    return parse_body(
        {
            "sections": [
                {
                    "title": "Motif de consultation",
                    "code": "29299-5",
                    "blocks": [
                        {
                            "type": "paragraph",
                            "runs": [
                                {"text": "Suivi de "},
                                {"kind": "field", "field": "patient.used_given_name"},
                                {"text": " : "},
                                {"text": "hypertension artérielle", "bold": True},
                                {"text": ", tolérance du traitement "},
                                {"text": "à surveiller", "italic": True, "underline": True},
                                {"text": "."},
                            ],
                        },
                        {"type": "merge_field", "field": "forms.latest_gir", "label": "GIR"},
                    ],
                },
                {
                    "title": "Examen clinique",
                    "blocks": [
                        {
                            "type": "bulleted_list",
                            "items": [
                                {"runs": [{"text": "Auscultation cardiaque normale"}]},
                                {"runs": [{"text": "Pas d'œdème des membres inférieurs"}]},
                            ],
                        },
                        {
                            "type": "table",
                            "header": [
                                _cell("Date"),
                                _cell("Tension"),
                                _cell("Pouls"),
                                _cell("Commentaire"),
                            ],
                            "rows": rows,
                        },
                        {"type": "page_break"},
                    ],
                },
                {
                    "title": "Conduite à tenir",
                    "blocks": [
                        {
                            "type": "numbered_list",
                            "items": [
                                {"runs": [{"text": "Poursuivre le traitement"}]},
                                {"runs": [{"text": "Bilan biologique ", "bold": True}]},
                            ],
                        }
                    ],
                },
            ]
        }
    )


FIELD_VALUES = {"patient.used_given_name": "Dominique", "forms.latest_gir": "GIR 4 (12/11/2026)"}


def ehpad() -> Organisation:
    return Organisation(
        finess="920000001",
        name="EHPAD Les Tilleuls",
        address=Address(
            house_number="12", street_name="Rue des Écoles", postal_code="92100", city="BOULOGNE"
        ),
        telecom=Telecom(value="tel:0146000000", use="WP"),
        facility_type_code="SA17",
        facility_type_display="Etablissement pour personnes âgées",
        practice_setting_code="ETABLISSEMENT",
        practice_setting_display="Etablissement de santé",
    )


def ehpad_physician() -> Professional:
    return author().model_copy(update={"organisation": ehpad()})


def dlu_metadata(*, version: int = 1) -> DocumentMetadata:
    return metadata(version=version, document_id=f"dlu-000{version}").model_copy(
        update={"type_code": "74207-2", "title": "Dossier de liaison d'urgence"}
    )


def dlu_answers() -> dict[str, Any]:
    """Answers of the forms service's DLU definition (v1), every section filled."""
    return {
        "patient": {
            "birth_name": "PAT-TROIS",
            "first_name": "DOMINIQUE",
            "used_name": "PAT-TROIS",
            "sex": "F",
            "birth_date": "1979-03-28",
        },
        "legal_representative": {
            "name": "Jeanne NESSI",
            "measure": "curatelle",
            "phone": "01 47 15 00 00",
        },
        "person_to_notify": {"name": "Sophie NESSI", "relationship": "Sœur", "phone": "0647150100"},
        "trusted_person": {"name": "Paul NESSI", "relationship": "Frère", "phone": "0647150200"},
        "attending_physician": {"name": "Dr Stéphane MEDIONI", "phone": "01 47 15 00 01"},
        "coordinating_physician": {"name": "Dr Anne LEROY", "phone": "01 46 00 00 02"},
        "contact_24h": "01 46 00 00 24",
        "preferred_hospital": "Hôpital Ambroise-Paré, Boulogne-Billancourt",
        "active_conditions": "Bronchite chronique simple\nHypertension artérielle",
        "medical_history": "Infarctus du myocarde (2018)",
        "allergies": "Paracétamol",
        "long_term_treatments": "Ramipril 5 mg : 1 cp le matin",
        "palliative_care": {"in_progress": False},
        "advance_directives": {"written": True, "location": "Dossier de soins, EHPAD"},
        "observations": {
            "can_communicate": True,
            "oriented": True,
            "falls": True,
            "hearing_loss": True,
        },
        "bmr": {"carrier": False},
        "vaccinations": "Grippe (octobre 2026), tétanos (2020)",
        "autonomy": {"gir": 4, "evaluated_on": "2026-11-12", "aggir_submission_id": "sub-1"},
        "comments": "Porte des lunettes.",
        "annexes": ["DLU_006", "DLU_009"],
    }
