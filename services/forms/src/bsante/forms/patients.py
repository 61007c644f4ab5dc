"""What forms asks the patient service: does this patient exist for the acting structure, and
its identity traits (for the DLU and the age the MMS norms need).

Asked over HTTP with the caller's own token and acting structure, so the patient service applies
its own tenancy and habilitation rules (another structure's patient answers 404 there too).
In the embedded platform the transport reaches the patient app in-process.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

import httpx
import structlog

from bsante.chassis import context
from bsante.chassis.errors import DomainError, Forbidden, Unauthorized
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
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._transport = transport

    async def find(
        self, patient_id: str, *, authorization: str, structure_id: str
    ) -> PatientFacts | None:
        headers = {"Authorization": authorization, "X-Structure-Id": structure_id}
        for name, var in (
            ("X-Correlation-Id", context.correlation_id),
            ("X-Request-Id", context.request_id),
        ):
            value = var.get()
            if value:
                headers[name] = value
        # The patient service audits this read: give it the end user's address, not ours.
        address = context.client_address.get()
        if address:
            headers["X-Forwarded-For"] = address
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
                response = await http.get(f"{self._base}/patients/{patient_id}", headers=headers)
        except httpx.HTTPError as error:
            log.warning("patient_service_unreachable", error_type=type(error).__name__)
            raise PatientServiceUnavailable("The patient service is unreachable") from None
        if response.status_code == 200:
            return facts_from_json(response.json(), patient_id)
        if response.status_code in (404, 422):
            return None
        if response.status_code == 401:
            raise Unauthorized("The patient service refused the token")
        if response.status_code == 403:
            raise Forbidden("You may not read this patient")
        log.warning("patient_service_error", status=response.status_code)
        raise PatientServiceUnavailable("The patient service did not answer properly")
