"""Fixtures of the card bridge tests: one private pcscd with two virtual slots, a test PKI."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bsante.card_bridge.emulators.pki import CardPki
from bsante.card_bridge.testing import VirtualReaders, unavailable_reason


@pytest.fixture(scope="session")
def virtual_readers() -> Iterator[VirtualReaders]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="bsante-pcscd-") as directory:
        readers = VirtualReaders(Path(directory)).start()
        try:
            yield readers
        finally:
            readers.stop()


@pytest.fixture
def readers(virtual_readers: VirtualReaders) -> Iterator[VirtualReaders]:
    """The session's pcscd, with both slots empty at the start and the end of the test."""
    from bsante.card_bridge.pcsc import Context
    from bsante.card_bridge.testing import wait_until

    def empty() -> None:
        for slot in virtual_readers.slots:
            slot.remove()
        context = Context()
        try:
            wait_until(
                lambda: (
                    not any(
                        state[0] & 0x20  # SCARD_STATE_PRESENT
                        for state in context.wait_for_change(
                            dict.fromkeys(context.readers(), 0), 0
                        ).values()
                    )
                ),
                what="both slots to be empty",
            )
        finally:
            context.close()

    empty()
    yield virtual_readers
    empty()


@pytest.fixture(scope="session")
def pki() -> CardPki:
    return CardPki()
