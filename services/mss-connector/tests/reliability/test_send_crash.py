"""Sending survives its worker dying at the worst moments: real processes killed before and
after the SMTP transaction, restarted; the peer's mailbox holds the message exactly once (by
Message-ID), none lost, and the connector records one MssMessageSent."""

from __future__ import annotations

import subprocess
import sys
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from mss_kit import (  # type: ignore[import-not-found]
    CORRESPONDENT,
    PDF,
    STRUCTURE,
    document_signed,
    signed_cda,
)
from pydantic import SecretStr

from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.chassis.jobs import JOBS
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.sqlite import SqliteStore
from bsante.contracts.events import DocumentSigned, MssRecipient
from bsante.mss_connector import outbound
from bsante.mss_connector.settings import MssConnectorSettings, StructureMailboxes
from bsante.mss_connector.simulator import Operator

WORKER = Path(__file__).with_name("mss_crash_worker.py")


async def prepare(data: Path, operator: Operator) -> None:
    """The connector's state after consuming a DocumentSigned: a message and its send job."""
    box = operator.mailbox(operator.structures[STRUCTURE])
    secret = data / "smtp.secret"
    secret.write_text(box.secret())
    box = box.model_copy(update={"password": SecretStr(""), "password_file": str(secret)})
    settings = MssConnectorSettings(
        store_url=f"sqlite:///{data / 'mss.db'}",
        bus_url=f"embedded://{data}",
        mailboxes={STRUCTURE: StructureMailboxes(organisational=box)},
        # Short timeouts: the lease of a dead worker's job expires within seconds.
        smtp_timeout_seconds=1.0,
        documents_timeout_seconds=0.5,
    )
    (data / "settings.json").write_text(settings.model_dump_json())
    cda = signed_cda()
    (data / "cda.bin").write_bytes(cda)
    (data / "pdf.bin").write_bytes(PDF)
    envelope = document_signed(
        uuid.uuid4(), cda, recipients=[MssRecipient(kind="professional", address=CORRESPONDENT)]
    )
    store = SqliteStore(data / "mss.db")
    await store.start()
    await store.ensure_indexes(outbound.INDEXES)
    messaging = Messaging("mss-connector", store, EmbeddedBus(data))
    async with messaging.unit_of_work() as uow:
        await outbound.on_document_signed(
            uow, envelope, DocumentSigned.model_validate(envelope.payload), settings=settings
        )
    await store.close()


def run(mode: str, data: Path) -> int:
    process = subprocess.run(
        [sys.executable, str(WORKER), mode, str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )
    if process.returncode not in (0, 17):
        raise AssertionError(process.stderr.decode(errors="replace")[-2000:])
    return process.returncode


async def outcome(data: Path) -> tuple[list[str], str, int]:
    store = SqliteStore(data / "mss.db")
    await store.start()
    jobs = await store.find(JOBS)
    [message] = await store.find(outbound.MESSAGES)
    sent = 0
    for record in await store.outbox_pending(limit=100):
        sent += b'"MssMessageSent"' in record.value
    await store.close()
    return [j.data["state"] for j in jobs], message.data["state"], sent


@pytest.mark.parametrize(
    ("mode", "transactions"),
    [("die-before-smtp", 1), ("die-after-smtp", 2)],
)
async def test_a_killed_sender_leaves_exactly_one_message_in_the_peer_mailbox(
    tmp_path: Path, operator: Operator, mode: str, transactions: int
) -> None:
    await prepare(tmp_path, operator)
    assert run(mode, tmp_path) == 17
    assert run("run", tmp_path) == 0

    jobs, state, sent_events = await outcome(tmp_path)
    assert jobs == ["succeeded"] and state == "sent" and sent_events == 1
    assert operator.smtp is not None
    # After a crash past the server's acceptance the message is submitted again, with the
    # same Message-ID: the operator keeps one copy.
    assert operator.smtp.stats.transactions == transactions

    def ids(raws: list[bytes]) -> list[str]:
        return [
            BytesParser(policy=policy.default).parsebytes(m)["Message-ID"].strip() for m in raws
        ]

    submitted = ids(operator.smtp.stats.received)
    assert len(set(submitted)) == 1, "every submission carried the same Message-ID"
    assert ids(operator.messages(CORRESPONDENT)) == submitted[:1], "one copy, none lost"
