"""MSSanté figures: messages built per second (XDM package, METADATA.XML, MIME), messages built
and sent per second to the local SMTP peer (aiosmtpd with STARTTLS and AUTH, one connection per
message as a send job makes), inbound messages parsed per second (MIME, XDM read defensively)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bsante.documents import samples
from bsante.documents.cda import build_cda_n1, to_bytes
from bsante.mss_connector import mail
from bsante.mss_connector.cda_header import read_header
from bsante.mss_connector.inbound import classify
from bsante.mss_connector.outbound import send_message
from bsante.mss_connector.settings import MssConnectorSettings
from bsante.mss_connector.simulator import CORRESPONDENT, Operator
from bsante.mss_connector.xdm import PackedDocument, build_package

PDF = b"%PDF-1.7\n" + b"0" * 30_000  # a report-sized payload
BATCH = 40


def _cda() -> bytes:
    return to_bytes(build_cda_n1(samples.metadata(), samples.patient(), samples.author(), PDF))


def _data(sender: str) -> dict[str, Any]:
    return {
        "message_id": mail.message_id(["d1"], [CORRESPONDENT], sender),
        "recipients": [{"address": CORRESPONDENT, "read_receipt": True}],
        "signed_at": "2026-11-30T09:30:00+00:00",
    }


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(Path(tmp_path_factory.mktemp("operator")), with_imap=False)
    asyncio.run(op.start())
    yield op
    asyncio.run(op.stop())


def test_messages_built_per_second(benchmark) -> None:  # type: ignore[no-untyped-def]
    cda = _cda()
    header = read_header(cda)

    def build() -> bytes:
        package = build_package(
            [PackedDocument(cda, header)],
            sender="secretariat@tilleuls.mssante.fr",
            submission_unique_id="2.25.1",
            source_id="1.2.250.1.213.1.1.9",
            submitted_at=datetime(2026, 11, 30, tzinfo=UTC),
        )
        return mail.build_message(
            sender="secretariat@tilleuls.mssante.fr",
            recipients=[CORRESPONDENT],
            message_id_value="bench@tilleuls.mssante.fr",
            subject=mail.subject_for(header),
            body="corps",
            attachments=[
                mail.Attachment("cr.pdf", PDF, "application", "pdf"),
                mail.Attachment("IHE_XDM.zip", package, "application", "zip"),
            ],
            read_receipt=True,
            sent_at=datetime(2026, 11, 30, tzinfo=UTC),
        ).as_bytes()

    benchmark.pedantic(build, rounds=200, warmup_rounds=5)
    per_second = 1 / benchmark.stats.stats.median
    benchmark.extra_info["messages_per_second"] = round(per_second)
    print(f"\nMSSanté message built: {per_second:.0f} messages/s (median)")


def test_messages_built_and_sent_per_second(benchmark, operator: Operator) -> None:  # type: ignore[no-untyped-def]
    address = operator.structures["demo-ehpad"]
    mailbox = operator.mailbox(address)
    settings = MssConnectorSettings(store_url="sqlite:///unused.db")
    cda = _cda()
    packed = [PackedDocument(cda, read_header(cda))]

    async def batch() -> None:
        for _ in range(BATCH):
            outcome = await send_message(settings, mailbox, _data(address), packed, [PDF])
            assert outcome.accepted == [CORRESPONDENT]

    benchmark.pedantic(lambda: asyncio.run(batch()), rounds=3, warmup_rounds=1)
    per_second = BATCH / benchmark.stats.stats.median
    benchmark.extra_info["messages_per_second"] = round(per_second, 1)
    print(f"\nMSSanté message built and sent (STARTTLS + AUTH): {per_second:.1f} messages/s")


def test_inbound_messages_parsed_per_second(benchmark) -> None:  # type: ignore[no-untyped-def]
    cda = _cda()
    header = read_header(cda)
    package = build_package(
        [PackedDocument(cda, header)],
        sender=CORRESPONDENT,
        submission_unique_id="2.25.2",
        source_id="1.2.250.1.213.1.1.9",
        submitted_at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    raw = mail.build_message(
        sender=CORRESPONDENT,
        recipients=["secretariat@tilleuls.mssante.fr"],
        message_id_value="in@demo.mssante.fr",
        subject=mail.subject_for(header),
        body="corps",
        attachments=[
            mail.Attachment("cr.pdf", PDF, "application", "pdf"),
            mail.Attachment("IHE_XDM.zip", package, "application", "zip"),
        ],
        read_receipt=True,
        sent_at=datetime(2026, 11, 30, tzinfo=UTC),
    ).as_bytes()

    def parse() -> str:
        return classify(raw, max_bytes=25 * 1024 * 1024).outcome

    assert benchmark.pedantic(parse, rounds=300, warmup_rounds=5) == "to_match"
    per_second = 1 / benchmark.stats.stats.median
    benchmark.extra_info["messages_per_second"] = round(per_second)
    print(
        f"\nInbound MSSanté message parsed: {per_second:.0f} messages/s (median, {len(raw)} bytes)"
    )
