"""Text the services accept and compare: the folding used for every search and match, and
the free-text type every API schema uses.

Free text accepted from clients: no NUL, no control characters, no bidirectional overrides.

`SafeText` is the one type every free-text field of an API schema uses (addresses, post-its,
display names, comments...). Control characters break logs, exports and terminals; bidi
controls (U+202A-U+202E, U+2066-U+2069) make a text read differently from what it stores.
Tabs and line breaks are allowed only in `SafeMultilineText` (notes, transmissions).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Final

from pydantic import AfterValidator

# Letters that NFKD does not decompose into ASCII.
_SPECIAL_LETTERS: Final = {
    "Œ": "OE",
    "œ": "OE",
    "Æ": "AE",
    "æ": "AE",
    "ß": "SS",
    "ẞ": "SS",
    "Ø": "O",
    "ø": "O",
    "Ð": "D",
    "ð": "D",
    "Þ": "TH",
    "þ": "TH",
    "Ł": "L",
    "ł": "L",
    "Đ": "D",
    "đ": "D",
    "ı": "I",
}
_NOT_ALNUM: Final = re.compile(r"[^0-9A-Z]+")


def fold(text: str | None) -> str:
    """Upper-case ASCII letters and digits, words separated by one space.

    Accents, case, ligatures and punctuation are ignored: "Lé-a  d’Arc" and "LE A D'ARC" both
    give "LE A D ARC", "Œdème" gives "OEDEME". Use it on both sides of a comparison.
    """
    if not text:
        return ""
    expanded = "".join(_SPECIAL_LETTERS.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", expanded)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    return _NOT_ALNUM.sub(" ", plain).strip()


def search_key(text: str | None) -> str:
    """`fold` without the spaces: a prefix key for names ("Saint-Éloi" -> "SAINTELOI")."""
    return fold(text).replace(" ", "")


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
