"""Service scopes both ways: user tokens never open service-only routes, service tokens never
open user routes, and a service token needs the route's scope.

Service-only routes are discovered from the apps (the `scope` their guard carries), like the
habilitation walker does for `allowed` routes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from kit import Platform, marked_routes  # type: ignore[import-not-found]

from bsante.chassis.auth import issue_service_token, issue_token
from bsante.contracts.permissions import roles

_PARAM = re.compile(r"\{[^}]+\}")
STRUCTURE = "demo-ehpad"


def service_routes(platform: Platform) -> list[tuple[str, str, str, str]]:
    """(service, method, path, scope) of every route guarded by `service_scope`."""
    return marked_routes(platform, "scope", str)


def user_token(platform: Platform, role: str) -> str:
    return issue_token(
        platform.services["identity"].app.state.signing_keys[0],
        subject=f"scope-{role}",
        structures=[STRUCTURE],
        roles={STRUCTURE: [role]},
        profession=None,
        issuer="bsante-identity",
        audience="bsante",
        ttl_seconds=600,
    )


def service_token(platform: Platform, scopes: list[str], client_id: str = "forms") -> str:
    return issue_service_token(
        platform.services["identity"].app.state.signing_keys[0],
        client_id=client_id,
        scopes=scopes,
        issuer="bsante-identity",
        audience="bsante",
        ttl_seconds=600,
    )


def on_behalf(bearer: str, user: str = "user-x") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {bearer}",
        "X-Structure-Id": STRUCTURE,
        "X-On-Behalf-Of": user,
    }


async def test_no_user_token_opens_a_service_only_route(platform: Platform) -> None:
    routes = service_routes(platform)
    assert ("patient", "GET", "/internal/patients/{patient_id}", "patient:read") in routes
    tokens = {role: user_token(platform, role) for role in roles()}
    wrong: list[dict[str, Any]] = []
    for service, method, path, scope in routes:
        url = f"/api/{service}" + _PARAM.sub(lambda _: str(uuid.uuid4()), path)
        for role, bearer in tokens.items():
            response = await platform.client.request(method, url, headers=on_behalf(bearer))
            if response.status_code != 403:
                wrong.append(
                    {"route": f"{method} {path}", "role": role, "status": response.status_code}
                )
        # And the route's scope does open it (404: no such patient, yet allowed).
        allowed = await platform.client.request(
            method, url, headers=on_behalf(service_token(platform, [scope]))
        )
        if allowed.status_code in (401, 403):
            wrong.append(
                {"route": f"{method} {path}", "scope": scope, "status": allowed.status_code}
            )
    assert not wrong, wrong


async def test_a_service_token_needs_the_scope_and_opens_no_user_route(platform: Platform) -> None:
    admin = await platform.login()
    created = await platform.create_patient(admin)
    patient_id = created.json()["id"]
    url = f"/api/patient/internal/patients/{patient_id}"
    other_scope = service_token(platform, ["documents:read"])
    lacking = await platform.client.get(url, headers=on_behalf(other_scope))
    assert lacking.status_code == 403
    assert "patient:read" in lacking.json()["detail"]
    reader = service_token(platform, ["patient:read"])
    found = await platform.client.get(url, headers=on_behalf(reader))
    assert found.status_code == 200, found.text
    assert found.json()["traits"]["birth_name"] == "DUPONT"
    assert set(found.json()) == {
        "id",
        "structure_id",
        "active",
        "traits",
        "contact",
        "medecin_traitant",
        "ipp",
        "identity_status",
        "ins",
        "dmp_opposition",
    }
    # The INS is given only for a qualifiée identity (RNIV); this one is provisoire.
    assert found.json()["identity_status"] == "provisoire" and found.json()["ins"] is None
    # The tenancy rule holds: another structure does not know this patient.
    elsewhere = {**on_behalf(reader), "X-Structure-Id": "demo-ssiad"}
    assert (await platform.client.get(url, headers=elsewhere)).status_code == 404
    # Who the service acts for is required.
    anonymous = {"Authorization": f"Bearer {reader}", "X-Structure-Id": STRUCTURE}
    missing = await platform.client.get(url, headers=anonymous)
    assert missing.status_code == 422
    assert "x-on-behalf-of" in missing.text
    # A service token on user routes: 403, it acts for no user.
    for user_route in (f"/api/patient/patients/{patient_id}", "/api/identity/me"):
        refused = await platform.client.get(user_route, headers=on_behalf(reader))
        assert refused.status_code == 403, user_route
    # Still verified against identity's keys: a forged signature is 401.
    forged = reader[:-4] + ("AAAA" if not reader.endswith("AAAA") else "BBBB")
    assert (await platform.client.get(url, headers=on_behalf(forged))).status_code == 401


async def test_the_ins_look_up_finds_only_a_qualifiee_record_of_the_structure(
    platform: Platform,
) -> None:
    from kit import MEDECIN  # type: ignore[import-not-found]

    doctor = await platform.login(MEDECIN)
    created = await platform.client.post(
        "/api/patient/patients",
        json={
            "birth_name": "LEFEVRE",
            "birth_given_names": "ELODIE MARIE",
            "sex": "F",
            "birth_date": "1979-03-12",
            "birth_place": "51215",
        },
        headers=doctor,
    )
    patient_id = created.json()["id"]
    record = f"/api/patient/patients/{patient_id}"
    assert (await platform.client.post(f"{record}/insi", headers=doctor)).status_code == 200
    INS = "279035121518989"  # noqa: N806 - the demo INSi's answer for these traits
    reader = on_behalf(service_token(platform, ["patient:read"], client_id="mss-connector"))
    url = f"/api/patient/internal/patients/by-ins/{INS}"
    # Récupérée (INS from INSi, no identity document checked): not enough to attach by it.
    for oid in ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10"):
        early = await platform.client.get(url, params={"oid": oid}, headers=reader)
        assert early.status_code == 404, early.text
    checked = await platform.client.post(
        f"{record}/identity-document", json={"document_type": "passeport"}, headers=doctor
    )
    assert checked.json()["identity_status"] == "qualifiee", checked.text
    facts = await platform.client.get(
        f"/api/patient/internal/patients/{patient_id}", headers=reader
    )
    oid = facts.json()["ins"]["oid"]
    found = await platform.client.get(url, params={"oid": oid}, headers=reader)
    assert found.status_code == 200, found.text
    assert found.json()["id"] == patient_id and found.json()["ins"]["matricule"] == INS
    # A user's token never opens it; another OID, another matricule or structure is not it.
    user = on_behalf(user_token(platform, "medecin"))
    assert (await platform.client.get(url, params={"oid": "x"}, headers=user)).status_code == 403
    wrong_oid = await platform.client.get(url, params={"oid": "1.2.3"}, headers=reader)
    assert wrong_oid.status_code == 404
    unknown = await platform.client.get(
        url.replace(INS, "179035121518900"), params={"oid": oid}, headers=reader
    )
    assert unknown.status_code == 404
    elsewhere = {**reader, "X-Structure-Id": "demo-ssiad"}
    other = await platform.client.get(url, params={"oid": oid}, headers=elsewhere)
    assert other.status_code == 404
