"""Receiving: mail in the structure's mailbox is fetched over IMAPS from Dovecot once, parsed
defensively, waits in the "to be matched" inbox, is attached to the patient a user names, and
the sender gets the MDN it asked for; what cannot be integrated is quarantined with its reason
and answered with the guide's "KO intégration" mail."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from mss_kit import (  # type: ignore[import-not-found]
    CORRESPONDENT,
    STRUCTURE,
    Connector,
    FakePatients,
    connector,
    eventually,
    needs_dovecot,
    signed_cda,
)

from bsante.mss_connector import mail, transport
from bsante.mss_connector.cda_header import read_header
from bsante.mss_connector.simulator import Operator
from bsante.mss_connector.xdm import PackedDocument, build_package

pytestmark = needs_dovecot
MAILBOX = "secretariat@tilleuls.mssante.fr"


def xdm_zip() -> bytes:
    cda = signed_cda()
    return build_package(
        [PackedDocument(cda, read_header(cda))],
        sender=CORRESPONDENT,
        submission_unique_id="2.25.99",
        source_id="1.2.250.1.213.1.1.9",
        submitted_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
    )


def traversal_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../outside.xml", b"<x/>")
    return buffer.getvalue()


async def correspondent_sends(
    operator: Operator, package: bytes, *, message_id: str, read_receipt: bool
) -> None:
    """The correspondent submits a message to the structure over SMTP, as its software would."""
    box = operator.mailbox(CORRESPONDENT)
    message = mail.build_message(
        sender=CORRESPONDENT,
        recipients=[MAILBOX],
        message_id_value=message_id,
        subject="XDM/1.0/DDM+Compte rendu de consultation PAT-TROIS DOMINIQUE 28/03/1979",
        body="Bonjour, ci-joint le compte rendu.",
        attachments=[mail.Attachment("IHE_XDM.zip", package, "application", "zip")],
        read_receipt=read_receipt,
        sent_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
    )
    await transport.send(box, message, [MAILBOX], timeout=10)


async def inbox(mss: Connector, state: str) -> list[dict[str, Any]]:
    response = await mss.client.get(
        "/api/mss-connector/inbox", params={"state": state}, headers=mss.headers()
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _parse(raw: bytes):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(raw)


async def test_a_received_package_is_matched_attached_and_acknowledged(mss: Connector) -> None:
    await correspondent_sends(
        mss.operator, xdm_zip(), message_id="cr-0001@demo.mssante.fr", read_receipt=True
    )

    async def waiting() -> bool:
        return len(await inbox(mss, "to_match")) == 1

    await eventually(waiting)
    item = (await inbox(mss, "to_match"))[0]
    assert item["documents"][0]["type_code"] == "11488-4"
    assert item["documents"][0]["patient_id"] == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"
    received = await mss.wait_events("MssMessageReceived")
    assert received[0].payload["outcome"] == "to_match"

    patient_id = "0191c2b4-51f8-7a34-9b1e-3f6a0d2c8e11"
    response = await mss.client.post(
        f"/api/mss-connector/inbox/{item['id']}/match",
        json={"patient_id": patient_id},
        headers=mss.headers(),
    )
    assert response.status_code == 202, response.text
    again = await mss.client.post(
        f"/api/mss-connector/inbox/{item['id']}/match",
        json={"patient_id": patient_id},
        headers=mss.headers(),
    )
    assert again.status_code == 409

    async def attached() -> bool:
        return len(await inbox(mss, "attached")) == 1

    await eventually(attached)
    [(key, record)] = mss.documents.received.items()
    assert key == ("mssante", "cr-0001@demo.mssante.fr/0")
    assert record["patient_id"] == patient_id
    assert record["content"] == signed_cda()
    assert record["metadata"]["type_code"] == "11488-4"

    def mdn() -> list[Any]:
        return [
            m
            for m in map(_parse, mss.operator.messages(CORRESPONDENT))
            if m.get_content_type() == "multipart/report"
        ]

    async def acknowledged() -> bool:
        return len(mdn()) == 1

    await eventually(acknowledged)
    report = mdn()[0]
    assert report.get_param("report-type") == "disposition-notification"
    parts = list(report.iter_parts())
    fields = parts[1].get_payload()[0]
    assert fields["Original-Message-ID"] == "<cr-0001@demo.mssante.fr>"
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed"
    assert fields["Message-ID"] is None, "the original id is not written out as Message-ID"


async def test_an_unsafe_package_is_quarantined_and_the_sender_told(mss: Connector) -> None:
    await correspondent_sends(
        mss.operator, traversal_zip(), message_id="cr-0002@demo.mssante.fr", read_receipt=False
    )

    async def quarantined() -> bool:
        return len(await inbox(mss, "quarantined")) == 1

    await eventually(quarantined)
    item = (await inbox(mss, "quarantined"))[0]
    assert "unsafe path" in item["reason"]

    async def told() -> bool:
        return any(
            _parse(m)["Subject"].startswith("[KO Intégration système !][901] XDM/1.0/DDM+")
            for m in mss.operator.messages(CORRESPONDENT)
        )

    await eventually(told)
    assert mss.documents.received == {}


async def test_each_message_is_fetched_once_across_restarts(
    tmp_path: Path, operator: Operator
) -> None:
    async with connector(tmp_path / "c", operator) as first:
        await correspondent_sends(
            operator, xdm_zip(), message_id="cr-0003@demo.mssante.fr", read_receipt=False
        )

        async def one() -> bool:
            return await first.service.store.count("mss_inbound") == 1

        await eventually(one)
    async with connector(tmp_path / "c", operator) as second:
        await correspondent_sends(
            operator, xdm_zip(), message_id="cr-0004@demo.mssante.fr", read_receipt=False
        )

        async def two() -> bool:
            return await second.service.store.count("mss_inbound") == 2

        await eventually(two)
        state = await second.service.store.find("mss_mailbox_state")
        assert state[0].data["last_uid"] == 2
        received = await second.events("MssMessageReceived")
        assert len(received) == 2, "the first message was not handled again after the restart"


async def test_a_package_with_a_known_qualifiee_ins_is_attached_with_no_human(
    tmp_path: Path, operator: Operator
) -> None:
    patients = FakePatients()
    patient_id = "0191c2b4-51f8-7a34-9b1e-3f6a0d2c8e12"
    patients.qualifiee[(STRUCTURE, "279035121518989", "1.2.250.1.213.1.4.10")] = patient_id
    async with connector(tmp_path / "connector", operator, patients=patients) as mss:
        await correspondent_sends(
            mss.operator, xdm_zip(), message_id="cr-ins@demo.mssante.fr", read_receipt=False
        )

        async def attached() -> bool:
            return len(await inbox(mss, "attached")) == 1

        await eventually(attached)
        item = (await inbox(mss, "attached"))[0]
        assert item["patient_id"] == patient_id
        assert await inbox(mss, "to_match") == []
        [(key, record)] = mss.documents.received.items()
        assert key == ("mssante", "cr-ins@demo.mssante.fr/0")
        assert record["patient_id"] == patient_id
        assert patients.asked == [(STRUCTURE, "279035121518989", "1.2.250.1.213.1.4.10")]
