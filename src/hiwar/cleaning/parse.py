"""From a generator's raw text to `messages`.

Generators label turns in many ways; a label is recognised only at the start of a line:
`[|Human|]` / `[|AI|]` (Jais), or a word label followed by a colon (المستخدم / المساعد, السائل / المجيب,
User / Assistant, Human / AI), optionally inside markdown bold, after a bullet or a turn number, or with a
turn number after it. Word labels need the colon so that a sentence starting with "User" is not a turn.
"""

from __future__ import annotations

import re

USER_WORDS = ["المستخدم", "السائل", "User", "Human"]
ASSISTANT_WORDS = ["المساعد", "المجيب", "Assistant", "AI"]

_PREFIX = r"^[ \t]*(?:[-*•][ \t]+)?(?:\(?\d+[.)\-][ \t]*)?(?:\*\*)?[ \t]*"
_NUMBER = r"(?:[ \t]*\(?\d+\)?)?"


def _word_label(words: list[str]) -> str:
    alternatives = "|".join(words)
    # colon inside or outside the bold markers: **المستخدم:** or **المستخدم**:
    return rf"(?:{alternatives}){_NUMBER}[ \t]*(?::[ \t]*(?:\*\*)?|(?:\*\*)[ \t]*:)"


LABEL_RE = re.compile(
    _PREFIX + rf"(?:(?P<user>\[\|Human\|\][ \t]*:?|{_word_label(USER_WORDS)})"
    rf"|(?P<assistant>\[\|AI\|\][ \t]*:?|{_word_label(ASSISTANT_WORDS)}))[ \t]*",
    re.MULTILINE | re.IGNORECASE,
)
# Jais's prompt ends with "### Response: [|AI|]": the dialogue a model writes comes after both.
RESPONSE_RE = re.compile(r"### Response:[ \t]*(?:\[\|AI\|\][ \t]*:?)?")


def strip_echo(text: str, prompt: str | None = None) -> str:
    """Drop an echoed prompt: the prompt itself at the start, and anything up to a last `### Response:`."""
    if prompt and text.startswith(prompt):
        text = text[len(prompt):]
    markers = list(RESPONSE_RE.finditer(text))
    return text[markers[-1].end():] if markers else text


def parse_dialogue(text: str, prompt: str | None = None) -> list[dict]:
    """Labelled turns in order; text before the first label (preambles, prompt echo) is dropped."""
    text = strip_echo(text, prompt)
    matches = list(LABEL_RE.finditer(text))
    turns = []
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(text)
        turns.append({"role": match.lastgroup, "content": text[match.end():end].strip()})
    return turns


def trim_truncated(messages: list[dict]) -> list[dict]:
    """A generation that hit its token limit ends mid-turn: drop that turn, then any unanswered user turn."""
    messages = messages[:-1]
    if messages and messages[-1]["role"] == "user":
        messages = messages[:-1]
    return messages
