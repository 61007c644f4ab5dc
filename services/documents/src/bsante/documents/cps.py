"""The professional's own CPS as the signer: a `KeyHandle` whose `sign` the card does, through
the card bridge agent's local API on the workstation.

The documents service calls the agent itself (`POST /cps/sign` with the pairing token, the PIN
and the digest), so this fits a documents service running on the workstation next to the agent
(the embedded platform of `make run`); a service in the cluster cannot reach a workstation's
127.0.0.1. The PIN and the pairing token come with the sign request, are sent to the agent
only, and are never kept nor logged. Calls are blocking: the sealing code runs in a worker
thread (`run_cpu`), never inside a store transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bsante.chassis.errors import ConflictError, Refusal, RuleViolation, Unavailable
from bsante.documents import signing
from bsante.documents.sealing import Verification, verification_of

log = structlog.get_logger(__name__)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class CardAccess:
    """What the agent wants to let the card sign: its pairing token, the PIN, the reader."""

    pairing_token: str = field(repr=False)
    pin: str = field(repr=False)
    reader: str | None = None


class CardRefused(RuleViolation):
    """The card or the agent refused (wrong PIN, bad input): 422, nothing signed."""

    def __init__(self, detail: str, kind: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail, errors=errors)
        self.kind = kind


class CardNotReady(ConflictError):
    """No CPS, an unknown card, a card pulled out or a blocked PIN: 409, nothing signed."""

    def __init__(self, detail: str, kind: str) -> None:
        super().__init__(detail, errors=[{"field": "signer", "message": detail}])
        self.kind = kind


class CardBridgeUnreachable(Unavailable):
    kind = "card-bridge-unreachable"


class CpsNotConfigured(RuleViolation):
    kind = "cps-signing-not-configured"


def _refusal(response: httpx.Response) -> Refusal:
    """The agent's problem+json as the documents service's own refusal."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    kind = str(body.get("type", "")).rsplit("/", 1)[-1] or f"http-{response.status_code}"
    detail = str(body.get("detail") or f"the card bridge answered {response.status_code}")
    status = response.status_code
    if kind == "wrong-pin":
        tries = response.headers.get("x-pin-tries-left", "?")
        return CardRefused(
            f"Wrong CPS PIN ({tries} tries left): nothing was signed",
            kind,
            [{"field": "signer.pin", "message": detail}],
        )
    if kind == "bad-pin":
        return CardRefused(detail, kind, [{"field": "signer.pin", "message": detail}])
    if kind == "unpaired":
        return CardRefused(
            "The card bridge refused the pairing token",
            "card-bridge-unpaired",
            [{"field": "signer.pairing_token", "message": "not the agent's pairing token"}],
        )
    if status in (409, 423):
        return CardNotReady(f"{detail}: nothing was signed", kind)
    if 400 <= status < 500:
        return CardRefused(
            f"The CPS could not sign: {detail}", kind, [{"field": "signer", "message": detail}]
        )
    return CardBridgeUnreachable(f"The card bridge failed ({status})")


class CardBridgeKey:
    """The signature key of the CPS in the workstation's reader (`signing.KeyHandle`)."""

    def __init__(self, client: Any, access: CardAccess) -> None:
        self._client = client  # makes an httpx.Client to the agent, one per call
        self._access = access
        found = self._call("GET", "/cps/certificates", params=self._reader())
        self.ps_id_nat: str | None = found.get("ps_id_nat")
        self._chain = _certificates(found)

    def _reader(self) -> dict[str, str]:
        return {"reader": self._access.reader} if self._access.reader else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._access.pairing_token}"}
        try:
            with self._client() as client:
                response = client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            log.warning("card_bridge_unreachable", error_type=type(error).__name__)
            raise CardBridgeUnreachable(
                "The card bridge on this workstation is unreachable"
            ) from None
        if response.status_code != 200:
            raise _refusal(response)
        body = response.json()
        if not isinstance(body, dict):
            raise CardBridgeUnreachable("The card bridge answered something unexpected")
        return body

    def certificate_chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    def sign(self, data: bytes, hash_algorithm: str) -> bytes:
        name = hash_algorithm.lower()
        if name not in _HASHES:
            raise signing.SigningError(f"unsupported hash algorithm {hash_algorithm!r}")
        hasher = hashes.Hash(_HASHES[name]())
        hasher.update(data)
        answer = self._call(
            "POST",
            "/cps/sign",
            json={
                "pin": self._access.pin,
                **self._reader(),
                "hash_algorithm": name,
                "digest": base64.b64encode(hasher.finalize()).decode(),
            },
        )
        if _certificates(answer)[0] != self._chain[0]:
            # Another card was put in between: its signature would not match the chain embedded.
            raise CardNotReady("The CPS changed while signing", "card-changed")
        return base64.b64decode(answer["signature"])


def _certificates(body: dict[str, Any]) -> list[x509.Certificate]:
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in body["certificates"]]
    except (KeyError, TypeError, ValueError):
        raise CardBridgeUnreachable("The card bridge sent unreadable certificates") from None
    if not chain:
        raise CardBridgeUnreachable("The card bridge sent no certificate")
    return chain


class CpsSigning:
    """Signing with the professional's CPS through the card bridge, and verifying it against
    the CPS trust anchors (the IGC-Santé roots in production, the test CA in tests)."""

    def __init__(
        self,
        bridge_url: str,
        trust_anchors: Sequence[x509.Certificate],
        *,
        timeout_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.bridge_url = bridge_url
        self.trust_anchors = list(trust_anchors)
        self._timeout = timeout_seconds
        self._transport = transport

    def key(self, access: CardAccess) -> CardBridgeKey:
        """The inserted CPS's key (reads its certificates; blocking)."""
        if not self.bridge_url:
            raise CpsNotConfigured(
                "Signing with a CPS needs the card bridge (DOCUMENTS_CARD_BRIDGE_URL)",
                errors=[{"field": "signer.mode", "message": "no card bridge configured"}],
            )
        return CardBridgeKey(
            lambda: httpx.Client(
                base_url=self.bridge_url, timeout=self._timeout, transport=self._transport
            ),
            access,
        )

    def seal_pdf(self, key: CardBridgeKey, pdf: bytes, *, signed_at: datetime) -> bytes:
        sealer = signing.Sealer(key, self.trust_anchors)
        return _card_call(
            lambda: sealer.seal_pdf(
                pdf, signed_at=signed_at, reason="Signature du professionnel (CPS)"
            )
        )

    def seal_cda(self, key: CardBridgeKey, cda: bytes, *, signed_at: datetime) -> bytes:
        sealer = signing.Sealer(key, self.trust_anchors)
        return _card_call(lambda: sealer.seal_cda_detached(cda, signed_at=signed_at))

    def verify(self, cda: bytes, pdf: bytes | None, *, cda_signature: bytes | None) -> Verification:
        found = signing.verify(
            cda, pdf, trust_anchors=self.trust_anchors, cda_signature=cda_signature
        )
        return verification_of(found, pdf)


def _card_call(seal: Any) -> bytes:
    """Run a seal whose `sign` goes to the card; the card's refusal comes out as it is, even
    when the signing library wrapped it."""
    try:
        result: bytes = seal()
    except Refusal:
        raise
    except Exception as error:
        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, Refusal):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise
    return result
