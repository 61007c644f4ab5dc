"""What the bridge knows of the cards: ATRs, application identifiers, files and status words.

CPS (CPS3 and CPS4 are IAS-ECC cards): the ATRs and the CPX IAS application identifier are
those of the fact sheet (OpenSC, ANS Cryptolib). The certificate file identifiers and key
references below are the project's own choice (the real CPS file map is not public); the
commands are the ISO 7816-4 / IAS-ECC ones: SELECT, READ BINARY, VERIFY, MSE SET, PSO COMPUTE
DIGITAL SIGNATURE (signature key) and INTERNAL AUTHENTICATE (authentication key), both over a
DigestInfo, the card adding the PKCS#1 v1.5 padding.

Carte Vitale: the real layout is not public (official access goes through the GIE SESAM-Vitale
libraries). The layout here is the PROJECT'S OWN, used by its emulator and by no real card: a
proprietary application identifier and one file of BER-TLV records (see :mod:`.vitale_data`).
"""

from __future__ import annotations

from typing import Final

# -- CPS -----------------------------------------------------------------------------------

CPX_IAS_AID: Final = bytes.fromhex("E828BD080F8025000001FF0010")
CPX_IAS_CL_AID: Final = bytes.fromhex("E828BD080F8025000001FF0020")  # contactless: no signature

# (ATR, mask): a byte of the ATR counts where the mask byte has its bits set.
CPS3_ATR: Final = bytes.fromhex("3BAC00402A001225006480000310009000")
CPS3_ATR_MASK: Final = bytes.fromhex("FFFF00FFFF00FFFFFFFFFF00FFFF00FFFF")
CPS4_ATR: Final = bytes.fromhex("3B9B188001001225006480040100009044")

EF_CERT_AUTH: Final = 0xC001  # authentication certificate (DER)
EF_CERT_SIGN: Final = 0xC002  # signature certificate (DER)
EF_CERT_CA: Final = 0xC003  # issuing CA certificate (DER), to build the chain
KEY_AUTH: Final = 0x81
KEY_SIGN: Final = 0x82
PIN_REFERENCE: Final = 0x01
PIN_LENGTH: Final = 8  # the PIN is padded with FF up to this length
PIN_TRIES: Final = 3

# -- Vitale (project's own layout) -----------------------------------------------------------

VITALE_AID: Final = bytes.fromhex("F042534E5456495441")  # F0 (proprietary) + "BSNTVITA"
VITALE_ATR: Final = bytes.fromhex("3B8880014253564954414C45")  # "BSVITALE" historical bytes
EF_VITALE_DATA: Final = 0x0101

# -- Status words -----------------------------------------------------------------------------

SW_OK: Final = 0x9000
SW_END_OF_FILE: Final = 0x6282
SW_WRONG_LENGTH: Final = 0x6700
SW_SECURITY_NOT_SATISFIED: Final = 0x6982
SW_AUTH_BLOCKED: Final = 0x6983
SW_DATA_INVALID: Final = 0x6984
SW_CONDITIONS_NOT_SATISFIED: Final = 0x6985
SW_WRONG_DATA: Final = 0x6A80
SW_FILE_NOT_FOUND: Final = 0x6A82
SW_WRONG_P1P2: Final = 0x6B00
SW_INS_NOT_SUPPORTED: Final = 0x6D00
SW_CLA_NOT_SUPPORTED: Final = 0x6E00


def atr_matches(atr: bytes, reference: bytes, mask: bytes | None = None) -> bool:
    if len(atr) != len(reference):
        return False
    mask = mask or b"\xff" * len(reference)
    return all(a & m == r & m for a, r, m in zip(atr, reference, mask, strict=True))
