"""Text folding for search and matching, the one version every service uses."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

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
