"""Arabic text helpers. English-only text tools fail on Arabic without an error (they see no "words"),
so everything that compares or measures text in hiwar goes through here.

`normalize` is for matching and dedup only; stored text is never rewritten with it.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

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


def _lookup(*tables: dict) -> np.ndarray:
    """The translation tables as one array over UTF-16 code units (0 = delete); str.translate with a dict
    costs a dict lookup per character, an array lookup over the whole text is about twice as fast."""
    lut = np.arange(65536, dtype=np.uint16)
    for table in tables:
        for code, value in table.items():
            lut[code] = 0 if value is None else ord(value)
    return lut


_LUT = {False: _lookup(TABLE), True: _lookup(TABLE, TEH_MARBUTA)}


def normalize(text: str, teh_marbuta: bool = False) -> str:
    """Canonical form for matching: NFKC, no tashkeel/tatweel/invisibles, unified letter variants,
    collapsed whitespace. `teh_marbuta=True` also maps ة to ه (an optional CAMeL-style step)."""
    text = unicodedata.normalize("NFKC", text)
    units = _LUT[teh_marbuta][np.frombuffer(text.encode("utf-16-le", "surrogatepass"), np.uint16)]
    text = units[units != 0].tobytes().decode("utf-16-le", "surrogatepass")
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


# --- Latin script inside Arabic turns ------------------------------------------------------------------
# Arabic writers put names, brands, model numbers, web addresses, abbreviations and units in Latin letters,
# and often add the English term in parentheses after its Arabic translation. None of that is English
# drift. What is left once those are taken out, lower-case Latin words, is Latin prose.
_TLDS = "com|org|net|gov|edu|io|ai|app|info|me|co|sa|eg|ae|ma|jo|qa|kw|om|bh|lb|tn|dz|iq|sy|ps|ly|sd|ye|uk|fr|de"
_LATIN = "A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F"  # Latin letters, accented ones included
_NAME_WORD = rf"[{_LATIN}]*[A-Z0-9][{_LATIN}0-9]*(?:[-+.'’&][{_LATIN}0-9]+)*(?![{_LATIN}0-9])"
_NAMES = re.compile(
    r"(?:https?://|www\.)\S+"                                   # web address
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                             # email address
    rf"|\b[\w-]+(?:\.[\w-]+)*\.(?:{_TLDS})\b(?:/\S*)?"          # bare domain: noon.com, moh.gov.sa
    r"|\(\s*[A-Za-z][^()\u0600-\u06FF]{0,60}\)"                 # (English term) after its translation
    r"|\{\{?[\w ]{1,40}\}\}?|\[[A-Za-z_ ]{1,40}\]|<[A-Za-z_ ]{1,40}>"  # a template slot ({name}), judged apart
    # iPhone, Samsung, S24, GPT-4, PDF, USB-C, Ragnarök, also glued to an Arabic prefix (وSamsung, و16GB), and
    # title runs with their small words (God of War, Lord of the Rings)
    rf"|(?<![{_LATIN}0-9]){_NAME_WORD}(?:\s+(?:of|the|and|de|du|des|la|le|di|da|von|van|al|el)(?:\s+the)?\s+{_NAME_WORD})*"
    r"|(?<=\d)\s?(?:km|kg|cm|mm|mg|ml|gb|mb|kb|tb|hz|ghz|mhz|kwh|mah|am|pm|m|g|l)\b"  # units after numbers
    r"|\b(?:vs|etc|e\.g|i\.e)\b\.?"
)


_ASCII_ALNUM = re.compile(r"[A-Za-z]")


def strip_latin_names(text: str) -> str:
    """The text without the Latin-script names, addresses, terms in parentheses and units that are normal
    in Arabic writing (see above)."""
    return _NAMES.sub(" ", text) if _ASCII_ALNUM.search(text) else text


def arabic_ratio_with_names(text: str, prose: str, max_name_share: float = 1.0) -> float:
    """`arabic_ratio` of a text in which Latin names, model numbers and units (what `strip_latin_names` took
    out, giving `prose`) are neutral, up to `max_name_share` of its letters: the names beyond that share count
    as Latin, so a turn that is mostly a list of brand names is still not Arabic."""
    letters = len(LETTERS.findall(text))
    if not letters:
        return 0.0
    names = letters - len(LETTERS.findall(prose))
    neutral = min(names, max_name_share * letters)
    return len(ARABIC_LETTERS.findall(text)) / (letters - neutral) if letters > neutral else 0.0


def prose_arabic_ratio(text: str) -> float:
    """`arabic_ratio` of the text once Latin names and terms are taken out (of the whole text when nothing
    but names is left)."""
    rest = strip_latin_names(text)
    return arabic_ratio(rest) if LETTERS.search(rest) else arabic_ratio(text)


def latin_prose_words(text: str) -> list[str]:
    """Latin words that are prose, not names: lower-case words outside addresses and parentheses."""
    return latin_words(strip_latin_names(text))
