"""The habilitation matrix (role x action), loaded from `habilitations.json`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any


class Action(StrEnum):
    READ_PATIENT = "read_patient"
    READ_CLINICAL = "read_clinical"
    EDIT_PATIENT = "edit_patient"
    FILL_FORM = "fill_form"
    DRAFT_DOCUMENT = "draft_document"
    SIGN_DOCUMENT = "sign_document"
    SEND_DMP = "send_dmp"
    CONSULT_DMP = "consult_dmp"
    SEND_MSSANTE = "send_mssante"
    MANAGE_USERS = "manage_users"
    MANAGE_STRUCTURE = "manage_structure"
    VIEW_SLA = "view_sla"
    MANAGE_TICKETS = "manage_tickets"
    VIEW_AUDIT = "view_audit"
    MANAGE_DIRECTORY = "manage_directory"
    MANAGE_PLATFORM = "manage_platform"


class ServiceScope(StrEnum):
    """What a service client may ask another service (client-credentials tokens)."""

    PATIENT_READ = "patient:read"
    # Fetch signed artefacts (CDA, PDF) of any structure's documents (DMP and MSSanté feeding).
    DOCUMENTS_READ = "documents:read"
    # Attach documents received from outside (MSSanté inbound) to a patient.
    DOCUMENTS_ATTACH = "documents:attach"
    # Look up professionals, structures and their MSSanté addresses in identity's directory.
    DIRECTORY_READ = "directory:read"
    # Read a patient's latest form results (GIR, MMS, vitals) for document merge fields.
    FORMS_READ = "forms:read"


@cache
def matrix() -> dict[str, Any]:
    text = resources.files("bsante.contracts").joinpath("habilitations.json").read_text()
    data: dict[str, Any] = json.loads(text)
    unknown = {a for acts in data["roles"].values() for a in acts} - {a.value for a in Action}
    if unknown or set(data["actions"]) != {a.value for a in Action}:
        raise ValueError(f"habilitation matrix out of step with Action: {sorted(unknown)}")
    return data


def roles() -> list[str]:
    return sorted(matrix()["roles"])


def grantable_roles() -> list[str]:
    """Roles a structure administrator may grant (platform roles are not a structure's)."""
    return sorted(set(matrix()["roles"]) - set(matrix().get("platform_roles", ())))


def default_role(profession: str | None) -> str | None:
    """The role a profession (TRE_G15 code, or STAFF) brings by itself, if any."""
    if profession is None:
        return None
    role: str | None = matrix()["professions"].get(profession)
    return role


def is_allowed(granted_roles: Iterable[str], profession: str | None, action: Action) -> bool:
    """True when one of the roles, or the profession's default role, allows the action."""
    data = matrix()
    effective = set(granted_roles)
    if profession and profession in data["professions"]:
        effective.add(data["professions"][profession])
    return any(action.value in data["roles"].get(role, ()) for role in effective)
