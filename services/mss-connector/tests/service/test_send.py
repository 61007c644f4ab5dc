"""Sending: a signed document with MSSanté recipients reaches the correspondent's mailbox at the
loopback operator (SMTP with STARTTLS and AUTH), as the ANS guide shapes it, and the
acknowledgements that come back over IMAP move each recipient's status forward."""

from __future__ import annotations

import io
import zipfile
from email import policy
from email.parser import BytesParser

import pytest
from mss_kit import (  # type: ignore[import-not-found]
    CORRESPONDENT,
    Connector,
    document_signed,
    eventually,
    needs_dovecot,
    signed_cda,
)

from bsante.chassis.jobs import JOBS
from bsante.chassis.store import Query
from bsante.contracts.events import MssRecipient
from bsante.mss_connector import mail


def _parse(raw: bytes):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(raw)


@needs_dovecot
async def test_a_signed_document_reaches_the_correspondent_and_is_acknowledged(
    mss: Connector,
) -> None:
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id,
        cda,
        recipients=[MssRecipient(kind="professional", address=CORRESPONDENT, read_receipt=True)],
    )
    await mss.publish(envelope)
    sent = await mss.wait_events("MssMessageSent")
    message_id = sent[0].payload["message_id"]

    inbox = mss.operator.messages(CORRESPONDENT)
    assert len(inbox) == 1
    msg = _parse(inbox[0])
    assert msg["Message-ID"].strip() == f"<{message_id}>"
    assert msg["Subject"] == (
        "XDM/1.0/DDM+Compte rendu de consultation PAT-TROIS DOMINIQUE 28/03/1979"
    )
    assert msg["Disposition-Notification-To"] == "secretariat@tilleuls.mssante.fr"
    names = {part.get_filename(): part for part in msg.iter_attachments()}
    assert "IHE_XDM.zip" in names
    pdfs = [n for n in names if n and n.endswith(".pdf")]
    assert (
        len(pdfs) == 1
        and names[pdfs[0]].get_content()
        == b"%PDF-1.4\n% a tiny stand-in for the signed PDF/A\n%%EOF\n"
    )
    archive = zipfile.ZipFile(io.BytesIO(names["IHE_XDM.zip"].get_content()))
    assert sorted(archive.namelist()) == [
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "IHE_XDM/SUBSET01/METADATA.XML",
        "INDEX.HTM",
        "README.TXT",
    ]
    assert archive.read("IHE_XDM/SUBSET01/DOC0001.XML") == cda

    # The demo correspondent answers with a DSN then an MDN: delivered, then read.
    patient_id = envelope.payload["patient_id"]

    async def read() -> bool:
        items = await mss.messages(patient_id)  # type: ignore[arg-type]
        return bool(items) and items[0]["recipients"][0]["status"] == "read"

    await eventually(read)
    acks = await mss.wait_events("MssMessageAcknowledged", 2)
    assert [a.payload["status"] for a in acks] == ["delivered", "read"]
    assert all(a.payload["message_id"] == message_id for a in acks)


async def test_the_same_event_twice_sends_one_message(mss: Connector) -> None:
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id, cda, recipients=[MssRecipient(kind="professional", address=CORRESPONDENT)]
    )
    await mss.publish(envelope)
    await mss.publish(envelope)
    await mss.wait_events("MssMessageSent")

    async def jobs_done() -> bool:
        return await mss.service.store.count(JOBS, {"state": "succeeded"}) == 1

    await eventually(jobs_done)
    assert mss.operator.smtp is not None and mss.operator.smtp.stats.transactions == 1
    assert await mss.service.store.count(JOBS) == 1


async def test_a_5xx_fails_the_recipient_with_the_reply_and_is_not_retried(
    mss: Connector,
) -> None:
    assert mss.operator.smtp is not None
    mss.operator.smtp.rcpt_rule = lambda address: "550 5.7.1 mailbox refuses mail"
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id, cda, recipients=[MssRecipient(kind="professional", address=CORRESPONDENT)]
    )
    await mss.publish(envelope)
    failed = await mss.wait_events("MssDeliveryFailed")
    assert "550 5.7.1 mailbox refuses mail" in failed[0].payload["reason"]
    jobs = await mss.service.store.find(JOBS)
    assert [(j.data["state"], j.data["attempts"]) for j in jobs] == [("failed", 1)]
    items = await mss.messages(envelope.payload["patient_id"])
    assert items[0]["recipients"][0]["status"] == "failed"
    assert "550" in items[0]["recipients"][0]["reason"]
    assert mss.operator.messages(CORRESPONDENT) == []


async def test_a_4xx_is_retried_then_sent(mss: Connector) -> None:
    assert mss.operator.smtp is not None
    replies = ["451 4.3.0 try again later"]
    mss.operator.smtp.rcpt_rule = lambda address: replies.pop() if replies else None
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id, cda, recipients=[MssRecipient(kind="professional", address=CORRESPONDENT)]
    )
    await mss.publish(envelope)

    async def retried() -> bool:
        jobs = await mss.service.store.find(JOBS)
        return bool(jobs) and jobs[0].data["attempts"] == 1 and jobs[0].data["state"] == "pending"

    await eventually(retried)
    job = (await mss.service.store.find(JOBS))[0]
    assert job.data["last_error"]["message"].startswith("451 4.3.0")
    # Run the retry now rather than after its backoff.
    async with mss.service.store.transaction() as tx:
        await tx.update(JOBS, job.id, {**job.data, "due_at": job.data["created_at"]}, job.version)
    assert mss.service.jobs is not None
    mss.service.jobs.wake()
    await mss.wait_events("MssMessageSent")
    assert len(mss.operator.messages(CORRESPONDENT)) == 1


async def test_the_patient_mailbox_needs_a_qualified_ins(mss: Connector) -> None:
    cda = signed_cda(with_ins=False)
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id,
        cda,
        recipients=[
            MssRecipient(kind="patient", address="patient"),
            MssRecipient(kind="professional", address=CORRESPONDENT),
        ],
    )
    await mss.publish(envelope)
    failed = await mss.wait_events("MssDeliveryFailed")
    assert failed[0].payload["source"] == "policy"
    assert "qualifiée" in failed[0].payload["reason"]
    sent = await mss.wait_events("MssMessageSent")
    assert sent[0].payload["recipient_count"] == 1
    msg = _parse(mss.operator.messages(CORRESPONDENT)[0])
    assert msg["To"] == CORRESPONDENT


@pytest.mark.parametrize("count", [12])
async def test_more_recipients_than_the_limit_make_several_messages(
    mss: Connector, count: int
) -> None:
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    recipients = [
        MssRecipient(kind="professional", address=f"dr{i}@ailleurs.mssante.fr")
        for i in range(count)
    ]
    await mss.publish(document_signed(document_id, cda, recipients=recipients))

    async def two() -> bool:
        return await mss.service.store.count("mss_messages") == 2

    await eventually(two)
    docs = await mss.service.store.find("mss_messages")
    assert sorted(len(d.data["recipients"]) for d in docs) == [2, 10]


@needs_dovecot
async def test_an_error_mdn_fails_the_recipient(mss: Connector) -> None:
    """The correspondent's software could not integrate the document: its MDN says so."""
    mss.operator.correspondent_auto_reply = False
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id,
        cda,
        recipients=[MssRecipient(kind="professional", address=CORRESPONDENT, read_receipt=True)],
    )
    await mss.publish(envelope)
    await mss.wait_events("MssMessageSent")
    received = mss.operator.messages(CORRESPONDENT)[0]
    mdn = mail.build_mdn(
        mail.parse(received), mailbox=CORRESPONDENT, error=("902", "Identifiant inconnu")
    )
    assert mdn is not None
    mss.operator.deliver(str(mdn["To"]), mdn.as_bytes(), CORRESPONDENT)
    failed = await mss.wait_events("MssDeliveryFailed")
    assert failed[0].payload["source"] == "mdn" and "902" in failed[0].payload["reason"]
    items = await mss.messages(envelope.payload["patient_id"])
    assert items[0]["recipients"][0]["status"] == "failed"


async def test_an_address_outside_mssante_is_refused_before_sending(mss: Connector) -> None:
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id,
        cda,
        recipients=[
            MssRecipient(kind="professional", address="someone@gmail.com"),
            MssRecipient(kind="professional", address=CORRESPONDENT),
        ],
    )
    await mss.publish(envelope)
    sent = await mss.wait_events("MssMessageSent")
    assert sent[0].payload["recipient_count"] == 1
    failed = await mss.wait_events("MssDeliveryFailed")
    assert failed[0].payload["source"] == "policy"
    assert failed[0].payload["reason"] == "not an MSSanté address"
    assert mss.operator.smtp is not None
    [raw] = mss.operator.smtp.stats.received
    assert b"gmail.com" not in raw


async def test_a_recipient_refused_alone_with_a_4xx_gets_a_later_round(mss: Connector) -> None:
    other = "dr.second@demo.mssante.fr"
    assert mss.operator.smtp is not None
    mss.operator.passwords[other] = "unused"  # a mailbox of the operator
    refusals = ["452 4.2.2 mailbox full"]
    mss.operator.smtp.rcpt_rule = lambda address: (
        refusals.pop() if address == other and refusals else None
    )
    cda = signed_cda()
    document_id = mss.documents.add(cda)
    envelope = document_signed(
        document_id,
        cda,
        recipients=[
            MssRecipient(kind="professional", address=CORRESPONDENT),
            MssRecipient(kind="professional", address=other),
        ],
    )
    await mss.publish(envelope)
    await mss.wait_events("MssMessageSent")

    async def second_round() -> bool:
        return await mss.service.store.count(JOBS) == 2

    await eventually(second_round)
    items = await mss.messages(envelope.payload["patient_id"])
    accepted, refused = (r["status"] for r in items[0]["recipients"])
    # The accepted one may already be acknowledged by the operator's delivery notification.
    assert accepted in ("sent", "delivered") and refused == "pending"
    # Run the later round now rather than after its delay.
    [job] = await mss.service.store.find(JOBS, Query(where={"state": "pending"}))
    async with mss.service.store.transaction() as tx:
        await tx.update(JOBS, job.id, {**job.data, "due_at": job.data["created_at"]}, job.version)
    assert mss.service.jobs is not None
    mss.service.jobs.wake()
    sent = await mss.wait_events("MssMessageSent", 2)
    assert [e.payload["recipient_count"] for e in sent] == [1, 1]
    assert sent[0].payload["message_id"] == sent[1].payload["message_id"]
    assert len(mss.operator.messages(other)) == 1 and len(mss.operator.messages(CORRESPONDENT)) == 1
