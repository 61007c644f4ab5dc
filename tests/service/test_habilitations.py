"""Walk the habilitation matrix over the real routes of every mounted service.

For every route guarded by `allowed(action)` and every role of the matrix, a user holding only
that role gets 403 exactly when the matrix denies the action. Routes are discovered from the
apps, so routes added later are covered without touching this test.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from kit import Platform, marked_routes  # type: ignore[import-not-found]

from bsante.chassis.auth import issue_token
from bsante.contracts.permissions import Action, is_allowed, roles

STRUCTURE = "demo-ehpad"
_PARAM = re.compile(r"\{[^}]+\}")


def guarded_routes(platform: Platform) -> list[tuple[str, str, str, Action]]:
    """(service, method, path, action) of every route with an `allowed` check."""
    return marked_routes(platform, "action", Action)


def token(platform: Platform, role: str) -> str:
    identity = platform.services["identity"]
    return issue_token(
        identity.app.state.signing_keys[0],
        subject=f"matrix-{role}",
        structures=[STRUCTURE],
        roles={STRUCTURE: [role]},
        profession=None,
        issuer="bsante-identity",
        audience="bsante",
        ttl_seconds=600,
    )


async def test_every_guarded_route_follows_the_matrix(platform: Platform) -> None:
    routes = guarded_routes(platform)
    assert routes, "no guarded route found"
    covered = {action for *_, action in routes}
    assert {
        Action.READ_PATIENT,
        Action.READ_CLINICAL,
        Action.EDIT_PATIENT,
        Action.FILL_FORM,
        Action.VIEW_AUDIT,
    } <= covered
    # Minted before any request: a route may rotate the signing key, old tokens stay valid.
    tokens = {role: token(platform, role) for role in roles()}
    mismatches: list[dict[str, Any]] = []
    for service, method, path, action in routes:
        url = f"/api/{service}" + _PARAM.sub(lambda _: str(uuid.uuid4()), path)
        for role in roles():
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            response = await platform.client.request(method, url, headers=headers, json=body)
            expected = is_allowed([role], None, action)
            denied = response.status_code == 403
            if expected == denied or response.status_code in (401, 500):
                mismatches.append(
                    {
                        "route": f"{method} {service}{path}",
                        "action": action.value,
                        "role": role,
                        "status": response.status_code,
                        "allowed_by_matrix": expected,
                    }
                )
    assert not mismatches, mismatches


# Paths whose answers are clinical content: form answers and results, transmissions, vital
# signs, the DLU, post-its and the timeline.
CLINICAL_PATHS = ("/postits", "/timeline", "submissions", "/transmissions", "/surveillance", "/dlu")


async def test_administrators_manage_but_do_not_read_clinical_content(platform: Platform) -> None:
    admin = ["structure_admin"]
    assert is_allowed(admin, None, Action.MANAGE_USERS)
    assert is_allowed(admin, None, Action.READ_PATIENT)  # the administrative record
    assert not is_allowed(admin, None, Action.READ_CLINICAL)
    assert not is_allowed(admin, None, Action.FILL_FORM)
    clinical = [
        (service, path, action)
        for service, method, path, action in guarded_routes(platform)
        if method == "GET" and any(part in path for part in CLINICAL_PATHS)
    ]
    assert len(clinical) >= 10, clinical
    assert all(action is Action.READ_CLINICAL for *_, action in clinical), clinical


async def test_a_profession_brings_its_default_role(platform: Platform) -> None:
    identity = platform.services["identity"]
    doctor = issue_token(
        identity.app.state.signing_keys[0],
        subject="matrix-doctor",
        structures=[STRUCTURE],
        roles={STRUCTURE: []},
        profession="10",
        issuer="bsante-identity",
        audience="bsante",
        ttl_seconds=600,
    )
    headers = {"Authorization": f"Bearer {doctor}"}
    read = await platform.client.get(f"/api/patient/patients/{uuid.uuid4()}", headers=headers)
    assert read.status_code == 404  # allowed, and no such patient
    users = await platform.client.get("/api/identity/users", headers=headers)
    assert users.status_code == 403
