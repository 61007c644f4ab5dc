"""Free text accepted from clients: no NUL, other control characters or bidi controls.

A local stand-in for the shared chassis type: names typed by people never need them, and bidi
overrides (U+202A-U+202E, U+2066-U+2069) make a stored name display as another.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def refuse_unsafe_characters(value: str) -> str:
    for ch in value:
        if ch in _BIDI or unicodedata.category(ch) == "Cc":
            raise ValueError(f"must not contain control character U+{ord(ch):04X}")
    return value


SafeText = Annotated[str, AfterValidator(refuse_unsafe_characters)]
