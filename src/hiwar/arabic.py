"""Arabic text helpers. English-only text tools fail on Arabic without an error (they see no "words"),
so everything that compares or measures text in hiwar goes through here.

`normalize` is for matching and dedup only; stored text is never rewritten with it.
"""

from __future__ import annotations

import re
import unicodedata

# One translation table does the per-character work in a single pass: alef/hamza forms to bare alef,
# alef maqsura to yeh, Persian/Urdu yeh and kaf to their Arabic forms, Arabic-Indic and Eastern digits to
# ASCII, and tatweel, tashkeel and invisible controls deleted.
_DELETE = [0x0640, *range(0x0610, 0x061B), *range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06EE),
           *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF, 0x061C]
TABLE = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ی": "ي", "ک": "ك", "ۀ": "ه",
     **{chr(0x0660 + d): str(d) for d in range(10)}, **{chr(0x06F0 + d): str(d) for d in range(10)},
     **{chr(c): None for c in _DELETE}}
)
TEH_MARBUTA = str.maketrans({"ة": "ه"})

ARABIC_LETTERS = re.compile("[\u0621-\u064a\u0671-\u06d3\u06fa-\u06ff\u0750-\u077f]")
LETTERS = re.compile(r"[^\W\d_]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def normalize(text: str, teh_marbuta: bool = False) -> str:
    """Canonical form for matching: NFKC, no tashkeel/tatweel/invisibles, unified letter variants,
    collapsed whitespace. `teh_marbuta=True` also maps ة to ه (an optional CAMeL-style step)."""
    text = unicodedata.normalize("NFKC", text).translate(TABLE)
    if teh_marbuta:
        text = text.translate(TEH_MARBUTA)
    return " ".join(text.split())


def arabic_ratio(text: str) -> float:
    """Share of letters that are Arabic script (0 when the text has no letters at all)."""
    letters = len(LETTERS.findall(text))
    return len(ARABIC_LETTERS.findall(text)) / letters if letters else 0.0


def latin_words(text: str) -> list[str]:
    """Latin-script words inside a text, the usual sign of English drift in an Arabic turn."""
    return LATIN_WORD.findall(text)


def match_key(text: str) -> str:
    """The form texts are compared in: Arabic-normalised (teh marbuta included) and lower-cased."""
    return normalize(text, teh_marbuta=True).lower()
