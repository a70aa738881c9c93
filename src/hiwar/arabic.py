"""Arabic text helpers. English-only text tools fail on Arabic without an error (they see no "words"),
so everything that compares or measures text in hiwar goes through here.

`normalize` is for matching and dedup only; stored text is never rewritten with it.
"""

from __future__ import annotations

import re
import unicodedata

# Harakat, tanween, shadda, sukun, superscript alef and Quranic marks.
TASHKEEL = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
TATWEEL = "\u0640"
# Zero-width and bidi controls that make identical-looking strings compare unequal.
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\u061c]")
ALEF_FORMS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا"})
# Alef maqsura to yeh; Persian/Urdu yeh and kaf to their Arabic forms; Arabic-Indic and Eastern digits
# to ASCII.
LETTER_FORMS = str.maketrans(
    {"ى": "ي", "ی": "ي", "ک": "ك", "ۀ": "ه", **{chr(0x0660 + d): str(d) for d in range(10)},
     **{chr(0x06F0 + d): str(d) for d in range(10)}}
)

ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3\u06fa-\u06ff\u0750-\u077f]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def normalize(text: str, teh_marbuta: bool = False) -> str:
    """Canonical form for matching: NFKC, no tashkeel/tatweel/invisibles, unified letter variants,
    collapsed whitespace. `teh_marbuta=True` also maps ة to ه (an optional CAMeL-style step)."""
    text = unicodedata.normalize("NFKC", text)
    text = INVISIBLE.sub("", text)
    text = TASHKEEL.sub("", text).replace(TATWEEL, "")
    text = text.translate(ALEF_FORMS).translate(LETTER_FORMS)
    if teh_marbuta:
        text = text.replace("ة", "ه")
    return " ".join(text.split())


def arabic_ratio(text: str) -> float:
    """Share of letters that are Arabic script (0 when the text has no letters at all)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if ARABIC_LETTER.match(ch)) / len(letters)


def latin_words(text: str) -> list[str]:
    """Latin-script words inside a text, the usual sign of English drift in an Arabic turn."""
    return LATIN_WORD.findall(text)
