"""Replacing, hiding and withdrawing a document in the DMP; consulting the DMP (ITI-18,
ITI-43) and its administrative side, audited."""

from __future__ import annotations

from dmp_kit import (  # type: ignore[import-not-found]
    AUTHORISED_INS,
    INS,
    Connector,
    Simulator,
    eventually,
)

from bsante.contracts import topics

DMP = "/api/dmp-connector"


def held(dmp: Simulator, doc_id: str, ins: str = INS) -> dict[str, object]:
    [doc] = [d for d in dmp.documents(ins) if str(d["unique_id"]).endswith(doc_id)]
    return doc


async def submitted(conn: Connector, **kwargs: object) -> tuple[str, str]:
    pid = await conn.qualified_patient(**kwargs)
    doc_id, body = conn.cda(pid, ins=kwargs.get("ins", INS))  # type: ignore[arg-type]
    await conn.publish(conn.signed(pid, doc_id, body), doc_id)
    await eventually(lambda: conn.state_is(doc_id, "submitted"))
    return pid, doc_id


async def test_a_new_version_replaces_the_previous_one(conn: Connector, dmp: Simulator) -> None:
    pid, first = await submitted(conn)
    second, body = conn.cda(pid, version=2, parent=first)
    await conn.publish(conn.signed(pid, second, body, version=2, parent=first), second)
    await eventually(lambda: conn.state_is(second, "submitted"))
    assert held(dmp, first)["status"].endswith("Deprecated")  # type: ignore[union-attr]
    assert held(dmp, second)["status"].endswith("Approved")  # type: ignore[union-attr]
    assert (await conn.submission(first))["state"] == "withdrawn"
    status = await conn.submission(second)
    assert status["replaces_unique_id"] == f"1.2.250.1.999.1.1^{first}"


async def test_visibility_is_changed_and_changed_back(conn: Connector, dmp: Simulator) -> None:
    _, doc_id = await submitted(conn)
    hide = await conn.client.put(
        f"{DMP}/documents/{doc_id}/dmp/visibility",
        json={"visibility": ["MASQUE_PS"]},
        headers=conn.headers(),
    )
    assert hide.status_code == 202, hide.text
    assert hide.json()["pending_change"] == "visibility"
    again = await conn.client.put(
        f"{DMP}/documents/{doc_id}/dmp/visibility", json={"visibility": []}, headers=conn.headers()
    )
    assert again.status_code == 409, "one change at a time"

    async def masked(expected: bool) -> bool:
        status = await conn.submission(doc_id)
        doc = held(dmp, doc_id)
        return (
            status["pending_change"] is None and ("MASQUE_PS" in doc["confidentiality"]) is expected
        )  # type: ignore[operator]

    await eventually(lambda: masked(True))
    assert held(dmp, doc_id)["version"] == 2
    show = await conn.client.put(
        f"{DMP}/documents/{doc_id}/dmp/visibility", json={"visibility": []}, headers=conn.headers()
    )
    assert show.status_code == 202
    await eventually(lambda: masked(False))
    updates = [e for e in await conn.events() if e.event_type == "DmpDocumentUpdated"]
    assert [e.payload["visibility"] for e in updates] == [["MASQUE_PS"], []]
    both = await conn.client.put(
        f"{DMP}/documents/{doc_id}/dmp/visibility",
        json={"visibility": ["MASQUE_PS", "INVISIBLE_PATIENT"]},
        headers=conn.headers(),
    )
    assert both.status_code == 202

    async def refused() -> bool:
        status = await conn.submission(doc_id)
        return status["pending_change"] is None and status["error_code"] is not None

    await eventually(refused)
    status = await conn.submission(doc_id)
    assert status["error_code"] == "XDSRegistryMetadataError" and status["visibility"] == []
    assert "MASQUE_PS" not in held(dmp, doc_id)["confidentiality"]  # type: ignore[operator]
    bad = await conn.client.put(
        f"{DMP}/documents/{doc_id}/dmp/visibility",
        json={"visibility": ["HIDDEN"]},
        headers=conn.headers(),
    )
    assert bad.status_code == 422 and "visibility" in bad.text


async def test_a_document_is_withdrawn(conn: Connector, dmp: Simulator) -> None:
    _, doc_id = await submitted(conn)
    nurse = conn.headers(roles=("infirmier",), profession="60")
    assert (
        await conn.client.delete(f"{DMP}/documents/{doc_id}/dmp", headers=nurse)
    ).status_code == 403
    gone = await conn.client.delete(f"{DMP}/documents/{doc_id}/dmp", headers=conn.headers())
    assert gone.status_code == 202, gone.text
    await eventually(lambda: conn.state_is(doc_id, "withdrawn"))
    assert held(dmp, doc_id)["status"].endswith("Deprecated")  # type: ignore[union-attr]
    again = await conn.client.delete(f"{DMP}/documents/{doc_id}/dmp", headers=conn.headers())
    assert again.status_code == 409


async def test_consultation_lists_and_retrieves_and_is_audited(
    conn: Connector, dmp: Simulator
) -> None:
    pid, doc_id = await submitted(conn, ins=AUTHORISED_INS)
    listed = await conn.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=conn.headers())
    assert listed.status_code == 200, listed.text
    unique_id = f"1.2.250.1.999.1.1^{doc_id}"
    assert unique_id in [d["unique_id"] for d in listed.json()]
    one = await conn.client.get(
        f"{DMP}/patients/{pid}/dmp-documents/{unique_id}", headers=conn.headers()
    )
    assert one.status_code == 200 and one.content == conn.documents.cda[doc_id]
    missing = await conn.client.get(
        f"{DMP}/patients/{pid}/dmp-documents/1.2.3^nothing", headers=conn.headers()
    )
    assert missing.status_code == 404
    admin = conn.headers(roles=("structure_admin",), profession=None)
    assert (
        await conn.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=admin)
    ).status_code == 403
    no_ps = conn.headers(ps_id_nat=None)
    refused = await conn.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=no_ps)
    assert refused.status_code == 403 and "ps_id_nat" in refused.text

    async def audited() -> bool:
        records = [e.payload for e in await conn.events(topics.AUDIT)]
        return {("search", "dmp_documents"), ("read", "dmp_document")} <= {
            (a["action"], a["resource"]) for a in records if a["patient_id"] == pid
        }

    await eventually(audited)
    state = await conn.client.get(f"{DMP}/patients/{pid}/dmp", headers=conn.headers())
    assert state.json() == {
        "exists": True,
        "status": "ouvert",
        "structure_authorisation": "autorise",
        "medecin_traitant_ps_id_nat": None,
    }


async def test_consultation_of_a_dmp_down_is_503(conn: Connector, dmp: Simulator) -> None:
    pid = await conn.qualified_patient(ins=AUTHORISED_INS)
    dmp.fault("http_503", count=1)
    down = await conn.client.get(f"{DMP}/patients/{pid}/dmp-documents", headers=conn.headers())
    assert down.status_code == 503 and down.headers["content-type"].startswith(
        "application/problem+json"
    )
    provisional = conn.patients.add(status="validee")
    waiting = await conn.client.get(
        f"{DMP}/patients/{provisional}/dmp-documents", headers=conn.headers()
    )
    assert waiting.status_code == 409 and "qualified INS" in waiting.text
