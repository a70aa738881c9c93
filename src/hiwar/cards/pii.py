"""The personal-data scan the cards report: every turn of every published conversation is searched for strings
shaped like contact details or identifiers. The data is synthetic (no person's text went in), so a match is a
string the generator made up that looks like personal data, not a leak; the cards give the counts either way
and name the conversations, and say what the scan cannot see (names of people, addresses in words).

Digits are matched after Arabic-Indic and Persian digits become ASCII, so a phone number written ٠٥٠١٢٣٤٥٦٧
counts like 0501234567.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)

# kind -> (what the cards call it, the pattern). Checked digit sequences (cards, IBANs) are confirmed below.
PATTERNS = {
    "email": ("e-mail addresses", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    "url": ("web addresses", re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)),
    "social_handle": ("social-media handles", re.compile(r"(?<![\w@.])@[A-Za-z0-9_]{3,}")),
    "phone": ("phone numbers (international +/00 prefix, or a national number starting with 0)",
              re.compile(r"(?<![\w+])(?:(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\d){6,12}|0\d(?:[ .-]?\d){7,10})(?!\d)")),
    "card_number": ("payment card numbers (13 to 19 digits passing the Luhn check)",
                    re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")),
    "iban": ("IBANs (passing the ISO 13616 check)", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")),
    "ip_address": ("IPv4 addresses", re.compile(
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")),
    "long_number": ("runs of 9 or more digits (identity, account or phone numbers)", re.compile(r"(?<!\d)\d{9,}(?!\d)")),
}
KINDS = tuple(PATTERNS)
NAMED = 5  # conversations named per kind in the cards


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    s = text.replace(" ", "")
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _confirmed(kind: str, match: str) -> bool:
    if kind == "card_number":
        return luhn(re.sub(r"\D", "", match))
    if kind == "iban":
        return iban_valid(match)
    return True


def kinds_in(text: str) -> set[str]:
    """The kinds of personal-data-shaped strings in one text."""
    text = text.translate(DIGITS)
    return {kind for kind, (_, pattern) in PATTERNS.items()
            if any(_confirmed(kind, m.group(0)) for m in pattern.finditer(text))}


@dataclass
class Scan:
    """Turns scanned, and per kind the turns with a match and the conversations they belong to."""

    turns: int = 0
    conversations: int = 0
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    where: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def add(self, conversation_id: str, messages) -> None:
        self.conversations += 1
        found = set()
        for m in messages:
            self.turns += 1
            for kind in kinds_in(m["content"]):
                self.hits[kind] += 1
                found.add(kind)
        for kind in sorted(found):
            self.where[kind].append(conversation_id)

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    def metrics(self) -> dict:
        return {"turns_scanned": self.turns, "turns_with_a_match": dict(self.hits),
                "conversations_with_a_match": {k: len(v) for k, v in self.where.items()}}

    def findings(self) -> list[str]:
        """One sentence per kind found, naming up to NAMED conversations."""
        out = []
        for kind in KINDS:
            ids = self.where[kind]
            if ids:
                named = ", ".join(f"`{i}`" for i in ids[:NAMED]) + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")
                out.append(f"{PATTERNS[kind][0]}: {plural(self.hits[kind], 'turn')} in {plural(len(ids), 'conversation')} "
                           f"({named})")
        return out


def method() -> str:
    """How the scan works, in one sentence for the cards."""
    return ("every turn was searched, after Arabic-Indic digits were read as ASCII, for "
            + "; ".join(label for label, _ in PATTERNS.values())
            + ". Names of people and addresses written in words are not searched for: no name or address "
              "recogniser for Arabic runs here")
