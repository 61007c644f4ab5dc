"""Users and roles of a structure, the directory over HTTP, and the access-audit trail."""

from __future__ import annotations

import uuid

from kit import VAL, Platform, eventually  # type: ignore[import-not-found]

from bsante.identity.directory.annuaire import COLUMNS

OPS = ("ops@bsante.demo", "Exploitation-Demo-2026")
MEDECIN = ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026")
_POS = {name: i for i, name in enumerate(COLUMNS)}


def extraction(*rows: dict[str, str]) -> bytes:
    lines = ["|".join(COLUMNS) + "|"]
    for values in rows:
        row = [""] * len(COLUMNS)
        for name, value in values.items():
            row[_POS[name]] = value
        lines.append("|".join(row) + "|")
    return ("\n".join(lines) + "\n").encode()


def person(rpps: str, last: str, first: str, city: str, profession: str = "10") -> dict[str, str]:
    return {
        "Type d'identifiant PP": "8",
        "Identifiant PP": rpps,
        "Identification nationale PP": "8" + rpps,
        "Nom d'exercice": last,
        "Prénom d'exercice": first,
        "Code profession": profession,
        "Libellé commune (coord. structure)": city,
        "Identifiant technique de la structure": "R" + rpps,
        "Numéro FINESS site": "750803447",
    }


async def test_annuaire_upload_search_and_malformed_file(platform: Platform) -> None:
    ops = await platform.login(OPS)
    body = extraction(
        person("99700367909", "LÉVÊQUE", "Hélène", "Saint-Étienne"),
        person("10001000032", "LEVEQUE", "Marc", "Lyon", "60"),
        person("12345678901", "BAD", "Check digit", "Paris"),
    )
    imported = await platform.client.post(
        "/api/identity/directory/imports",
        content=body,
        headers={**ops, "Content-Type": "text/plain", "X-File-Name": "extrait.txt"},
    )
    assert imported.status_code == 201, imported.text
    report = imported.json()
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert report["rejections"][0] == {
        "line": 4,
        "reason": "invalid_rpps",
        "detail": "RPPS '12345678901' has an invalid Luhn check digit",
    }
    again = await platform.client.get(
        f"/api/identity/directory/imports/{report['import_id']}", headers=ops
    )
    assert again.json()["lines"] == 3

    user = await platform.login()
    search = await platform.client.get(
        "/api/identity/directory/professionals", params={"name": "leveque"}, headers=user
    )
    assert [p["first_name"] for p in search.json()["items"]] == ["Hélène", "Marc"]
    assert search.json()["total"] == 2
    by_city = await platform.client.get(
        "/api/identity/directory/professionals",
        params={"city": "saint etienne", "profession": "10"},
        headers=user,
    )
    assert [p["rpps"] for p in by_city.json()["items"]] == ["99700367909"]
    paged = await platform.client.get(
        "/api/identity/directory/professionals",
        params={"name": "Lév", "limit": 1, "offset": 1},
        headers=user,
    )
    assert paged.json()["total"] == 2 and paged.json()["items"][0]["first_name"] == "Marc"
    detail = await platform.client.get(
        "/api/identity/directory/professionals/99700367909", headers=user
    )
    assert detail.json()["ps_id_nat"] == "899700367909"
    assert detail.json()["activities"][0]["structure_id"] == "1750803447"
    site = await platform.client.get("/api/identity/directory/structures/1750803447", headers=user)
    assert site.json()["finess_kind"] == "ET" and len(site.json()["activities"]) == 2

    before = await platform.services["identity"].store.count("professionals")
    malformed = await platform.client.post(
        "/api/identity/directory/imports",
        content=b"not|an|extraction\n1|2|3\n",
        headers={**ops, "Content-Type": "text/plain"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("Not an Annuaire Santé personne-activité file")
    assert await platform.services["identity"].store.count("professionals") == before
    denied = await platform.client.post(
        "/api/identity/directory/imports",
        content=body,
        headers={**user, "Content-Type": "text/plain"},
    )
    assert denied.status_code == 403


async def test_manual_registration_derives_national_ids(platform: Platform) -> None:
    ops = await platform.login(OPS)
    created = await platform.client.post(
        "/api/identity/directory/structures",
        headers=ops,
        json={"finess": "750803447", "finess_kind": "ET", "legal_entity_finess": "750712184",
              "name": "Hôpital Test", "city": "Paris"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "1750803447"
    bad = await platform.client.post(
        "/api/identity/directory/structures",
        headers=ops,
        json={"finess": "750803448", "finess_kind": "ET", "name": "X"},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "finess"
    professional = await platform.client.post(
        "/api/identity/directory/professionals",
        headers=ops,
        json={"rpps": "10001000040", "last_name": "Roux", "profession_code": "50",
              "mssante": ["a.roux@ch.mssante.fr"]},
    )  # fmt: skip
    assert professional.status_code == 201, professional.text
    assert professional.json()["ps_id_nat"] == "810001000040"
    twice = await platform.client.post(
        "/api/identity/directory/professionals",
        headers=ops,
        json={"rpps": "10001000040", "last_name": "Roux", "profession_code": "50"},
    )
    assert twice.status_code == 409


async def test_administrators_manage_the_users_of_their_structure(platform: Platform) -> None:
    admin = await platform.login()
    created = await platform.client.post(
        "/api/identity/users",
        headers=admin,
        json={
            "username": "as@tilleuls.demo",
            "display_name": "Aide",
            "password": "Aide-Soignante-2026",
            "roles": ["aide_soignant"],
        },
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    weak = await platform.client.post(
        "/api/identity/users",
        headers=admin,
        json={"username": "weak@tilleuls.demo", "display_name": "W", "password": "password"},
    )
    assert weak.status_code == 422 and {e["field"] for e in weak.json()["errors"]} == {"password"}
    listed = await platform.client.get("/api/identity/users", headers=admin)
    assert "as@tilleuls.demo" in [u["username"] for u in listed.json()["items"]]
    granted = await platform.client.put(
        f"/api/identity/users/{user_id}/roles", headers=admin, json={"roles": ["secretaire"]}
    )
    assert granted.json()["roles"] == ["secretaire"]
    platform_role = await platform.client.put(
        f"/api/identity/users/{user_id}/roles", headers=admin, json={"roles": ["ops"]}
    )
    assert platform_role.status_code == 422
    # Another structure's administrator does not see this user.
    val = await platform.login(VAL)
    assert (
        await platform.client.get(f"/api/identity/users/{user_id}", headers=val)
    ).status_code == 404
    hidden = await platform.client.put(
        f"/api/identity/users/{user_id}/roles", headers=val, json={"roles": ["secretaire"]}
    )
    assert hidden.status_code == 404
    # A professional is linked by RPPS; the same professional joins a second structure.
    doctor = await platform.client.post(
        "/api/identity/users",
        headers=val,
        json={"username": "claire@val.demo", "display_name": "Dr Lemaire", "rpps": "10001000016"},
    )
    assert doctor.status_code == 201, doctor.text
    assert doctor.json()["id"] == "user-medecin-demo-ehpad" and doctor.json()["profession"] == "10"
    unknown = await platform.client.post(
        "/api/identity/users",
        headers=val,
        json={"username": "x@val.demo", "display_name": "X", "rpps": "10001000057"},
    )
    assert unknown.status_code == 422
    tokens = await platform.client.post(
        "/api/identity/auth/token",
        json={"username": MEDECIN[0], "password": MEDECIN[1], "structure_id": "demo-ssiad"},
    )
    assert tokens.json()["acting_structure"] == "demo-ssiad"


async def test_every_patient_access_is_in_the_audit_trail(platform: Platform) -> None:
    doctor = await platform.login(MEDECIN)
    created = await platform.create_patient(doctor)
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    read = await platform.client.get(f"/api/patient/patients/{patient_id}", headers=doctor)
    assert read.status_code == 200
    admin = await platform.login()

    async def recorded() -> bool:
        history = await platform.client.get(
            f"/api/identity/audit/patients/{patient_id}", headers=admin
        )
        return history.status_code == 200 and history.json()["total"] >= 2

    await eventually(recorded)
    history = (
        await platform.client.get(f"/api/identity/audit/patients/{patient_id}", headers=admin)
    ).json()
    newest = history["items"][0]
    assert newest["user_id"] == "user-medecin-demo-ehpad"
    assert newest["acting_structure"] == "demo-ehpad"
    assert newest["client_address"] == "203.0.113.7" and newest["request_id"]
    assert {i["action"] for i in history["items"]} >= {"create", "read"}
    by_user = await platform.client.get(
        "/api/identity/audit/users/user-medecin-demo-ehpad", headers=admin
    )
    assert by_user.json()["total"] >= 2
    # Another structure: 404, as if the patient did not exist; a doctor may not read audits.
    val = await platform.login(VAL)
    other = await platform.client.get(f"/api/identity/audit/patients/{patient_id}", headers=val)
    assert other.status_code == 404
    assert (
        await platform.client.get(f"/api/identity/audit/patients/{patient_id}", headers=doctor)
    ).status_code == 403
    missing = await platform.client.get(
        f"/api/identity/audit/patients/{uuid.uuid4()}", headers=admin
    )
    assert missing.status_code == 404


def test_no_route_modifies_or_deletes_audit_records(platform: Platform) -> None:
    app = platform.services["identity"].app
    paths = app.openapi()["paths"]
    for path, operations in paths.items():
        if path.startswith("/audit"):
            assert set(operations) == {"get"}, path


async def test_mssante_recipients_are_searched_by_name_rpps_and_city(platform: Platform) -> None:
    """The seeded professionals carry MSSanté addresses; a role without send_mssante is 403."""
    doctor = platform.as_role("medecin")
    by_name = await platform.client.get(
        "/api/identity/directory/mssante-recipients", params={"name": "lemaire"}, headers=doctor
    )
    assert by_name.status_code == 200, by_name.text
    assert [i["address"] for i in by_name.json()["items"]] == ["claire.lemaire@tilleuls.mssante.fr"]
    item = by_name.json()["items"][0]
    assert item["directory_id"] == "810001000016" and item["kind"] == "professional"
    by_rpps = await platform.client.get(
        "/api/identity/directory/mssante-recipients",
        params={"rpps": "10001000024"},
        headers=doctor,
    )
    assert [i["address"] for i in by_rpps.json()["items"]] == ["paul.girard@tilleuls.mssante.fr"]
    refused = await platform.client.get(
        "/api/identity/directory/mssante-recipients",
        params={"name": "lemaire"},
        headers=platform.as_role("aide_soignant"),
    )
    assert refused.status_code == 403
