"""MSSanté mail: stable Message-IDs, the guide's subject, the acknowledgements read (MDN, DSN)
and written (MDN with or without error), and defensive classification of inbound bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from mss_kit import CORRESPONDENT, signed_cda  # type: ignore[import-not-found]

from bsante.mss_connector import mail
from bsante.mss_connector.cda_header import read_header
from bsante.mss_connector.inbound import classify
from bsante.mss_connector.simulator import acknowledgements

SENDER = "secretariat@tilleuls.mssante.fr"


def outbound(read_receipt: bool = True) -> EmailMessage:
    return mail.build_message(
        sender=SENDER,
        recipients=[CORRESPONDENT],
        message_id_value=mail.message_id(["d1"], [CORRESPONDENT], SENDER),
        subject=mail.subject_for(read_header(signed_cda())),
        body="corps",
        attachments=[],
        read_receipt=read_receipt,
        sent_at=datetime(2026, 11, 30, tzinfo=UTC),
    )


def test_the_message_id_names_the_documents_and_recipients_not_their_order() -> None:
    a = mail.message_id(["d1", "d2"], ["x@a.mssante.fr", "Y@b.mssante.fr"], SENDER)
    assert a == mail.message_id(["d2", "d1"], ["y@b.mssante.fr", "x@a.mssante.fr"], SENDER)
    assert a != mail.message_id(["d1", "d2"], ["x@a.mssante.fr"], SENDER)
    assert a.endswith("@tilleuls.mssante.fr")


def test_the_subject_follows_the_guide() -> None:
    assert mail.subject_for(read_header(signed_cda())) == (
        "XDM/1.0/DDM+Compte rendu de consultation PAT-TROIS DOMINIQUE 28/03/1979"
    )


def test_the_correspondents_dsn_and_mdn_are_read_as_delivered_and_read() -> None:
    original = outbound()
    replies = acknowledgements(original.as_bytes(), recipient=CORRESPONDENT)
    reports = [r for reply in replies for r in mail.read_report(mail.parse(reply.as_bytes()))]
    expected_id = mail.bare_id(str(original["Message-ID"]))
    assert [(r.kind, r.status, r.recipient, r.original_message_id) for r in reports] == [
        ("dsn", "delivered", CORRESPONDENT, expected_id),
        ("mdn", "read", CORRESPONDENT, expected_id),
    ]
    assert reports[1].detail == "displayed"


def test_no_mdn_when_none_was_asked() -> None:
    assert (
        mail.build_mdn(mail.parse(outbound(read_receipt=False).as_bytes()), mailbox=SENDER) is None
    )
    assert (
        len(acknowledgements(outbound(read_receipt=False).as_bytes(), recipient=CORRESPONDENT)) == 1
    )


def test_an_error_mdn_carries_the_code_and_reads_back_as_failed() -> None:
    original = mail.parse(outbound().as_bytes())
    mdn = mail.build_mdn(original, mailbox=CORRESPONDENT, error=("902", "Identifiant inconnu"))
    assert mdn is not None
    assert str(mdn["Subject"]).startswith("[KO Intégration système !][902] XDM/1.0/DDM+")
    written = BytesParser(policy=policy.default).parsebytes(mdn.as_bytes())
    fields = list(written.iter_parts())[1].get_payload()[0]
    assert fields["Disposition"].endswith("processed/Error: 902^Identifiant inconnu")
    [report] = mail.read_report(mail.parse(mdn.as_bytes()))
    assert report.status == "failed" and "902" in report.detail
    assert report.original_message_id == mail.bare_id(str(outbound()["Message-ID"]))


def test_a_failed_dsn_reads_back_as_failed() -> None:
    raw = (
        b"From: postmaster@demo.mssante.fr\r\nTo: secretariat@tilleuls.mssante.fr\r\n"
        b"Subject: Undelivered\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns;demo.mssante.fr\r\n\r\n"
        b"Final-Recipient: rfc822;nobody@demo.mssante.fr\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 no such user\r\n\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m1@tilleuls.mssante.fr>\r\n"
        b"--b--\r\n"
    )
    [report] = mail.read_report(mail.parse(raw))
    assert (report.kind, report.status, report.recipient) == (
        "dsn",
        "failed",
        "nobody@demo.mssante.fr",
    )
    assert report.original_message_id == "m1@tilleuls.mssante.fr" and "5.1.1" in report.detail


def test_bad_inbound_bytes_are_quarantined_with_a_reason() -> None:
    assert classify(None, max_bytes=10).reason == "message larger than the limit"
    assert classify(b"x" * 11, max_bytes=10).outcome == "quarantined"
    garbage = classify(b"\x00\xff\xfe not mail at all", max_bytes=1000)
    assert garbage.outcome == "quarantined" and garbage.reason == "no IHE_XDM.zip attachment"
    broken = (
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: application/zip; name=IHE_XDM.zip\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n"
    )
    result = classify(broken, max_bytes=10_000)
    assert result.outcome == "quarantined" and result.reason == "not a zip archive"
