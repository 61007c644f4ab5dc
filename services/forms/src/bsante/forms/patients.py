"""What forms asks the patient service: does this patient exist for the acting structure, and
its identity traits (for the DLU and the age the MMS norms need).

Asked on the patient service's service-only route with forms' service token (client
credentials), naming the user and the acting structure; the patient service applies its tenancy
rule (another structure's patient answers 404) and audits the read. In the embedded platform the
transport reaches the patient app in-process.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

import httpx
import structlog

from bsante.chassis.auth import TokenVerifier
from bsante.chassis.errors import DomainError
from bsante.chassis.service_client import ServiceAuthUnavailable, ServiceClient
from bsante.forms.engine import PatientFacts

log = structlog.get_logger(__name__)


class PatientServiceUnavailable(DomainError):
    status = 503
    kind = "upstream-down"


class PatientDirectory(Protocol):
    async def find(
        self, patient_id: str, *, authorization: str, structure_id: str
    ) -> PatientFacts | None:
        """The patient as the caller may see it, or None when unknown to the acting structure."""
        ...


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def facts_from_json(body: Any, patient_id: str) -> PatientFacts:
    """Tolerant reading of GET /patients/{id}: unknown fields are ignored."""
    body = body if isinstance(body, dict) else {}
    traits = body.get("traits") if isinstance(body.get("traits"), dict) else {}

    def text(name: str) -> str | None:
        value = traits.get(name)
        return value if isinstance(value, str) and value else None

    born: date | None = None
    try:
        born = date.fromisoformat(traits["birth_date"])
    except (KeyError, TypeError, ValueError):
        born = None
    structure = body.get("structure_id")
    given = text("birth_given_names")
    contact = _object(body.get("contact"))
    address = _object(contact.get("address"))
    raw_lines = address.get("lines")
    lines: list[Any] = raw_lines if isinstance(raw_lines, list) else []
    place = " ".join(
        v for v in (address.get("postal_code"), address.get("city")) if isinstance(v, str) and v
    )
    one_line = ", ".join(
        [*(v for v in lines if isinstance(v, str) and v), *([place] if place else [])]
    )
    physician = body.get("medecin_traitant")
    physician_name = physician.get("display_name") if isinstance(physician, dict) else None

    def contact_text(name: str) -> str | None:
        value = contact.get(name)
        return value if isinstance(value, str) and value else None

    return PatientFacts(
        id=str(body.get("id") or patient_id),
        structure_id=structure if isinstance(structure, str) else None,
        birth_name=text("birth_name"),
        # Older records say first_name; the RNIV traits, the first of the birth given names.
        first_name=text("first_name")
        or text("first_birth_given_name")
        or (given.split()[0] if given else None),
        used_name=text("used_name"),
        sex=text("sex"),
        birth_date=born,
        phone=contact_text("phone"),
        mobile=contact_text("mobile"),
        address=one_line or None,
        attending_physician=physician_name if isinstance(physician_name, str) else None,
    )


class HttpPatientDirectory:
    """The patient service's service-only route, called with forms' own service token.

    forms has already checked the user's rights on its own route; the patient service audits
    the read as forms' on behalf of that user (named from the user's verified token).
    """

    def __init__(self, client: ServiceClient, verifier: TokenVerifier) -> None:
        self.client = client
        self._verifier = verifier

    async def find(
        self, patient_id: str, *, authorization: str, structure_id: str
    ) -> PatientFacts | None:
        _, _, token = authorization.partition(" ")
        user = str((await self._verifier.verify(token.strip()))["sub"])
        headers = {"X-Structure-Id": structure_id, "X-On-Behalf-Of": user}
        try:
            response = await self.client.get(f"internal/patients/{patient_id}", headers=headers)
        except httpx.HTTPError as error:
            log.warning("patient_service_unreachable", error_type=type(error).__name__)
            raise PatientServiceUnavailable("The patient service is unreachable") from None
        except ServiceAuthUnavailable:
            raise PatientServiceUnavailable("forms could not obtain its service token") from None
        if response.status_code == 200:
            return facts_from_json(response.json(), patient_id)
        if response.status_code in (404, 422):
            return None
        # 401/403: forms' own credentials or scope are wrong, not the user's rights.
        log.warning("patient_service_error", status=response.status_code)
        raise PatientServiceUnavailable("The patient service did not answer properly")
