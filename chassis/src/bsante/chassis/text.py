"""Free text accepted from clients: no NUL, no control characters, no bidirectional overrides.

`SafeText` is the one type every free-text field of an API schema uses (addresses, post-its,
display names, comments...). Control characters break logs, exports and terminals; bidi
controls (U+202A-U+202E, U+2066-U+2069) make a text read differently from what it stores.
Tabs and line breaks are allowed only in `SafeMultilineText` (notes, transmissions).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
MULTILINE_ALLOWED = frozenset("\t\n\r")


def unsafe_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character a stored text must not contain, or None."""
    for ch in value:
        if ch in BIDI_CONTROLS:
            return ch
        if multiline and ch in MULTILINE_ALLOWED:
            continue
        # Cc: C0/C1 controls (NUL included); Cs: lone surrogates, which no encoder accepts.
        if unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


def _check(value: str, multiline: bool) -> str:
    bad = unsafe_character(value, multiline=multiline)
    if bad is not None:
        raise ValueError(
            f"contains a forbidden control or bidirectional character (U+{ord(bad):04X})"
        )
    return value


def check_safe_text(value: str) -> str:
    """Pydantic validator: refuses control and bidi characters (one-line text)."""
    return _check(value, multiline=False)


def check_safe_multiline_text(value: str) -> str:
    """Pydantic validator: as `check_safe_text`, but tabs and line breaks are allowed."""
    return _check(value, multiline=True)


SafeText = Annotated[str, AfterValidator(check_safe_text)]
SafeMultilineText = Annotated[str, AfterValidator(check_safe_multiline_text)]
