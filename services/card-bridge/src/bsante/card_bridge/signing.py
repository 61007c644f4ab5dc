"""The professional's CPS as a signer: the documents service's `KeyHandle` port on a card.

Matches `bsante.documents.signing.KeyHandle` (certificate chain, then `sign(data,
hash_algorithm)` returning an RSA PKCS#1 v1.5 signature): the data is hashed here, the card's
signature key signs the DigestInfo (PSO COMPUTE DIGITAL SIGNATURE) after the PIN. Blocking, as
the sealing code that calls it (which runs in a worker thread).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bsante.card_bridge import cards
from bsante.card_bridge.agent import with_card


class CardSigningError(RuntimeError):
    """The card could not sign (pulled out, wrong or blocked PIN, unsupported hash)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class CpsKeyHandle:
    """The signature key of the CPS in ``reader``; the PIN is kept only as long as the handle."""

    def __init__(self, reader: str, pin: str, chain: list[x509.Certificate]) -> None:
        self.reader = reader
        self._pin = pin
        self._chain = chain

    @classmethod
    def from_card(cls, reader: str, pin: str) -> CpsKeyHandle:
        """Read the signature certificate and its issuer from the card."""
        try:
            found = with_card(reader, lambda card: cards.Cps(card).certificates())
        except cards.CardError as error:
            raise CardSigningError(str(error), error.kind) from None
        return cls(reader, pin, [found.signature, found.issuer])

    def certificate_chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    def sign(self, data: bytes, hash_algorithm: str) -> bytes:
        name = hash_algorithm.lower()
        algorithm = cards.HASHES.get(name)
        if algorithm is None:
            raise CardSigningError(f"unsupported hash algorithm {hash_algorithm!r}", "hash")
        hasher = hashes.Hash(algorithm())
        hasher.update(data)
        digest = hasher.finalize()

        def sign_on_card(card: cards.Transport) -> bytes:
            cps = cards.Cps(card)
            cps.select()
            cps.verify_pin(self._pin)
            return cps.sign_digest(digest, name)

        try:
            return with_card(self.reader, sign_on_card)
        except cards.CardError as error:
            raise CardSigningError(str(error), error.kind) from None
