"""The bridge's card layer against the project's emulators on a real pcscd (vpcd slots)."""

from __future__ import annotations

import threading

import pytest

from bsante.card_bridge import cards, layout
from bsante.card_bridge.emulators.apdu import sw
from bsante.card_bridge.emulators.pki import CardPki, Issued, cps_card, unknown_card, vitale_card
from bsante.card_bridge.pcsc import Context, Watcher, connect
from bsante.card_bridge.testing import READER_NAMES, VirtualReaders, wait_until
from bsante.contracts.events.card_bridge import VitaleBeneficiary

DOCTOR = "810001000016"
SLOT0 = READER_NAMES[0]


@pytest.fixture(scope="module")
def doctor_keys(pki: CardPki) -> tuple[Issued, Issued]:
    return pki.card_keys(DOCTOR)


@pytest.fixture
def context() -> object:
    ctx = Context()
    yield ctx
    ctx.close()


def inserted(readers: VirtualReaders, card: object, context: Context, slot: int = 0) -> None:
    readers.slots[slot].insert(card)  # type: ignore[arg-type]
    name = READER_NAMES[slot]
    wait_until(
        lambda: context.wait_for_change({name: 0}, 0).get(name, (0, b""))[0] & 0x20,
        what="the card to be present",
    )


FAMILY = [
    VitaleBeneficiary(
        quality="assure", birth_name="DURAND", given_name="JEAN PAUL",
        birth_date="1962-01-15", sex="M", nir="1620188850453",
    ),
    VitaleBeneficiary(
        quality="enfant", birth_name="DURAND", given_name="LÉA", birth_date="2012-05-20",
        birth_rank=1,
    ),
    VitaleBeneficiary(  # a lunar birth date (day unknown), twins: rank 2
        quality="enfant", birth_name="DURAND", given_name="TOM", birth_date="2014-03-00",
        birth_rank=2, used_name="MARTIN",
    ),
]  # fmt: skip


def test_pcscd_lists_both_virtual_readers(readers: VirtualReaders, context: Context) -> None:
    assert context.readers() == list(READER_NAMES)


@pytest.mark.parametrize("cps4", [False, True])
def test_a_cps_is_identified_and_reads_its_certificates(
    readers: VirtualReaders,
    context: Context,
    pki: CardPki,
    doctor_keys: tuple[Issued, Issued],
    cps4: bool,
) -> None:
    inserted(readers, cps_card(pki, DOCTOR, keys=doctor_keys, cps4=cps4), context)
    with connect(context, SLOT0) as card:
        assert card.atr == (layout.CPS4_ATR if cps4 else layout.CPS3_ATR)
        assert cards.identify(card) == "cps"
        certificates = cards.Cps(card).certificates()
    assert certificates.authentication == doctor_keys[0].cert
    assert certificates.signature == doctor_keys[1].cert
    assert certificates.issuer == pki.intermediate.cert


def test_vitale_and_unknown_cards_are_told_apart(readers: VirtualReaders, context: Context) -> None:
    inserted(readers, vitale_card("1620188850453", FAMILY, "SN-42"), context, slot=1)
    inserted(readers, unknown_card(), context, slot=0)
    with connect(context, READER_NAMES[1]) as card:
        assert cards.identify(card) == "vitale"
        content = cards.read_vitale(card)
    assert content.holder_nir == "1620188850453" and content.card_serial == "SN-42"
    assert content.beneficiaries == FAMILY
    with connect(context, SLOT0) as card:
        assert cards.identify(card) == "unknown"
        with pytest.raises(cards.UnknownCard):
            cards.Cps(card).certificates()


def test_wrong_pins_count_down_then_block_the_card(
    readers: VirtualReaders, context: Context, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    emulator = cps_card(pki, DOCTOR, keys=doctor_keys)
    inserted(readers, emulator, context)
    with connect(context, SLOT0) as card:
        cps = cards.Cps(card)
        cps.select()
        assert cps.pin_tries_left() == 3
        with pytest.raises(cards.WrongPin) as wrong:
            cps.verify_pin("0000")
        assert wrong.value.tries_left == 2 and cps.pin_tries_left() == 2
        cps.verify_pin("1234")  # a right PIN resets the counter
        assert cps.pin_tries_left() == 3
        for left in (2, 1):
            with pytest.raises(cards.WrongPin, match=f"{left} tries left"):
                cps.verify_pin("9999")
        with pytest.raises(cards.PinBlocked):
            cps.verify_pin("9999")
        with pytest.raises(cards.PinBlocked):
            cps.verify_pin("1234")  # even the right PIN, once blocked
        assert cps.pin_tries_left() == 0
        with pytest.raises(cards.BadPin):
            cps.verify_pin("12ab")
    assert emulator.tries_left == 0


def test_the_card_signs_only_after_the_pin(
    readers: VirtualReaders, context: Context, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    inserted(readers, cps_card(pki, DOCTOR, keys=doctor_keys), context)
    with connect(context, SLOT0) as card:
        cps = cards.Cps(card)
        cps.select()
        with pytest.raises(cards.UnexpectedStatus) as refused:
            cps.authenticate(b"challenge")
        assert refused.value.status == layout.SW_SECURITY_NOT_SATISFIED
        cps.verify_pin("1234")
        signature = cps.authenticate(b"challenge")
    assert cards.verifies(doctor_keys[0].cert, b"challenge", signature)
    assert not cards.verifies(doctor_keys[1].cert, b"challenge", signature)
    assert not cards.verifies(doctor_keys[0].cert, b"another", signature)


def test_a_card_pulled_out_mid_operation_is_reported_and_the_reader_recovers(
    readers: VirtualReaders, context: Context, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    emulator = cps_card(pki, DOCTOR, keys=doctor_keys)
    inserted(readers, emulator, context)
    emulator.gate = threading.Event()  # the card holds its next answer
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            with connect(context, SLOT0) as card:
                cards.Cps(card).certificates()
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - checked below
            outcome.append(error)

    worker = threading.Thread(target=read)
    seen = len(emulator.apdus)
    worker.start()
    wait_until(lambda: len(emulator.apdus) > seen, what="the card to get a command")
    readers.slots[0].remove()
    emulator.gate.set()
    worker.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], cards.CardRemoved), outcome
    # No stuck reader: a new card works in the same slot.
    inserted(readers, cps_card(pki, DOCTOR, keys=doctor_keys), context)
    with connect(context, SLOT0) as card:
        assert cards.identify(card) == "cps"


@pytest.mark.parametrize(
    ("ins", "answer", "error"),
    [
        # truncated: no status word (an empty answer cannot cross vpcd: its driver waits)
        (0xB0, b"\x90", cards.MalformedResponse),
        (0xA4, sw(0x6F00), cards.UnexpectedStatus),  # "no precise diagnosis"
        (0xB0, sw(0x9000, b"\x30\x82\x00"), cards.MalformedResponse),  # a cut certificate
    ],
)
def test_malformed_answers_are_clear_errors(
    readers: VirtualReaders,
    context: Context,
    pki: CardPki,
    doctor_keys: tuple[Issued, Issued],
    ins: int,
    answer: bytes,
    error: type[Exception],
) -> None:
    emulator = cps_card(pki, DOCTOR, keys=doctor_keys)
    inserted(readers, emulator, context)
    emulator.faults[ins] = answer
    with connect(context, SLOT0) as card, pytest.raises(error):
        cards.Cps(card).certificates()
    del emulator.faults[ins]
    with connect(context, SLOT0) as card:
        assert cards.Cps(card).certificates().authentication == doctor_keys[0].cert


def test_cut_vitale_data_is_a_clear_error(readers: VirtualReaders, context: Context) -> None:
    emulator = vitale_card("1620188850453", FAMILY)
    data = emulator.files[layout.EF_VITALE_DATA]
    emulator.files[layout.EF_VITALE_DATA] = data[:-3]  # inside the last record
    inserted(readers, emulator, context)
    with connect(context, SLOT0) as card, pytest.raises(cards.MalformedResponse, match="Vitale"):
        cards.read_vitale(card)


def test_the_watcher_reports_insertions_and_removals(
    readers: VirtualReaders, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    events: list[tuple[str, str]] = []
    watcher = Watcher(
        lambda reader, atr: events.append(("inserted", reader)),
        lambda reader: events.append(("removed", reader)),
        poll_ms=100,
    )
    watcher.start()
    try:
        readers.slots[1].insert(vitale_card("1620188850453", FAMILY))
        wait_until(lambda: ("inserted", READER_NAMES[1]) in events, what="insertion")
        readers.slots[1].remove()
        wait_until(lambda: ("removed", READER_NAMES[1]) in events, what="removal")
    finally:
        watcher.stop()
    assert events == [("inserted", READER_NAMES[1]), ("removed", READER_NAMES[1])]


@pytest.mark.parametrize("algorithm", ["sha256", "sha384"])
def test_the_cps_key_handle_signs_what_the_signature_certificate_verifies(
    readers: VirtualReaders,
    context: Context,
    pki: CardPki,
    doctor_keys: tuple[Issued, Issued],
    algorithm: str,
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from bsante.card_bridge.signing import CardSigningError, CpsKeyHandle

    emulator = cps_card(pki, DOCTOR, keys=doctor_keys)
    inserted(readers, emulator, context)
    handle = CpsKeyHandle.from_card(SLOT0, "1234")
    assert handle.certificate_chain() == [doctor_keys[1].cert, pki.intermediate.cert]
    data = b"<ClinicalDocument>...</ClinicalDocument>"
    signature = handle.sign(data, algorithm)
    chosen = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[algorithm]
    doctor_keys[1].cert.public_key().verify(  # type: ignore[union-attr,call-arg]
        signature, data, padding.PKCS1v15(), chosen
    )
    with pytest.raises(CardSigningError):
        handle.sign(data, "md5")
    wrong = CpsKeyHandle(SLOT0, "0000", handle.certificate_chain())
    with pytest.raises(CardSigningError) as refused:
        wrong.sign(data, "sha256")
    assert refused.value.kind == "wrong-pin" and emulator.tries_left == 2
    readers.slots[0].remove()
    with pytest.raises(CardSigningError) as gone:
        handle.sign(data, "sha256")
    assert gone.value.kind in ("card-removed", "card-error")


def test_a_slow_card_holds_only_its_own_reader(
    readers: VirtualReaders, context: Context, pki: CardPki, doctor_keys: tuple[Issued, Issued]
) -> None:
    slow = cps_card(pki, DOCTOR, keys=doctor_keys)
    inserted(readers, slow, context)
    inserted(readers, vitale_card("1620188850453", FAMILY), context, slot=1)
    slow.gate = threading.Event()  # the CPS takes its time over the next command
    outcome: list[object] = []

    def read_slow() -> None:
        own = Context()
        try:
            with connect(own, SLOT0) as card:
                outcome.append(cards.identify(card))
        finally:
            own.close()

    worker = threading.Thread(target=read_slow)
    seen = len(slow.apdus)
    worker.start()
    wait_until(lambda: len(slow.apdus) > seen, what="the slow card to get a command")
    with connect(context, READER_NAMES[1]) as card:  # meanwhile, the other reader answers
        assert cards.read_vitale(card).holder_nir == "1620188850453"
    assert outcome == []  # the CPS still has not answered
    slow.gate.set()
    worker.join(timeout=30)
    assert outcome == ["cps"]
