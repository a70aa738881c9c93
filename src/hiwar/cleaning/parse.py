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
INPUT_RE = re.compile(r"### Input:[ \t]*")
SECTION_RE = re.compile(r"###[ \t]*(?:Instruction|Input|Response):")
# The request turn of an echoed wrapper ("write a dialogue about ..."), not part of the dialogue.
REQUEST_RE = re.compile(r"^\s*(?:اكتب|أكمل|اكمل)\s+(?:محادثة|حوار|المحادثة)|^\s*write an? (?:conversation|dialogue)",
                        re.IGNORECASE)

# End, turn and padding markers of common tokenizers, left in the text by servers that do not strip them.
SPECIAL_RE = re.compile(
    r"<\|(?:endoftext|end_of_text|begin_of_text|im_end|eot_id|eom_id|end|eos|pad|endofprompt)\|>"
    r"|<\|(?:im_start|start_header_id)\|>[ \t]*(?P<role>system|user|assistant|human|ai)?(?:[ \t]*<\|end_header_id\|>)?"
    r"|<\|(?P<role2>system|user|assistant)\|>|<start_of_turn>[ \t]*(?P<role3>user|model)?|<end_of_turn>"
    r"|</?s>|<pad>|<unk>|<eos>|<bos>|\[PAD\]|\[SEP\]|\[CLS\]|\[UNK\]",
    re.IGNORECASE,
)
_ROLE_LABEL = {"user": "User:", "human": "User:", "assistant": "Assistant:", "ai": "Assistant:", "model": "Assistant:"}


def strip_special_tokens(text: str) -> str:
    """Remove tokenizer markers. Where they carry the only role labels (a dialogue written in ChatML),
    they become labels; otherwise a role word after a marker goes with it."""
    def role(match):
        return (match.group("role") or match.group("role2") or match.group("role3") or "").lower()

    bare = SPECIAL_RE.sub("\n", text)
    if len(LABEL_RE.findall(bare)) >= 2:
        return bare
    return SPECIAL_RE.sub(lambda m: "\n" + _ROLE_LABEL.get(role(m), "") + " ", text)


def strip_echo(text: str, prompt: str | None = None) -> str:
    """Drop an echoed prompt: the prompt itself at the start, and anything up to a last `### Response:`.
    When nothing labelled follows that marker, the dialogue is in the echoed wrapper's input section."""
    if prompt and text.startswith(prompt):
        text = text[len(prompt):]
    markers = list(RESPONSE_RE.finditer(text))
    if not markers:
        return text
    after = text[markers[-1].end():]
    if len(LABEL_RE.findall(after)) >= 2:
        return after
    inputs = list(INPUT_RE.finditer(text))
    if not inputs:
        return after
    start = inputs[-1].end()
    end = next((m.start() for m in SECTION_RE.finditer(text, start)), len(text))
    return text[start:end] + "\n" + after


def parse_dialogue(text: str, prompt: str | None = None) -> list[dict]:
    """Labelled turns in order; tokenizer markers are removed, and text before the first label (preambles,
    prompt echo) is dropped, as is an echoed request turn ("write a dialogue about ...") at the start."""
    text = strip_echo(strip_special_tokens(text), prompt)
    matches = list(LABEL_RE.finditer(text))
    turns = []
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(text)
        turns.append({"role": match.lastgroup, "content": text[match.end():end].strip()})
    if len(turns) > 2 and turns[0]["role"] == "user" and REQUEST_RE.search(turns[0]["content"]) \
            and turns[1]["role"] == "user":
        turns = turns[1:]
    return turns


# How a turn ends when the generation stopped mid-sentence: a comma, colon or dash, a connective or
# preposition that must be followed by more, an open bracket or quote, a list number with nothing after it.
_CUT_END = re.compile(
    r"(?:[,،;:؛\-–(\[«]|\s(?:و|في|من|على|إلى|الى|عن|مع|أو|او|أن|ان|لأن|لان|ثم|حتى|التي|الذي|الذين|لكن|بل|مثل"
    r"|بين|لكي|كي|حول|نحو|لدى|منذ|خلال|عبر|and|or|the|of|to|with)|\n\s*(?:\d+[.)-]|[-*•]))\s*$",
    re.IGNORECASE,
)
_FINAL = re.compile(r"[.!?؟…)\]»\"'*]\s*$|[\U0001F300-\U0001FAFF\u2600-\u27BF]\s*$")


def looks_cut(turn: str, others: list[str]) -> bool:
    """Whether a conversation's last turn was cut mid-sentence, judged from its text (servers and proxies
    report finish_reason "stop" on cut answers too). A turn ending without final punctuation counts as
    cut when it is long and the other turns of the conversation do end with it."""
    text = turn.rstrip()
    if not text:
        return False
    if _CUT_END.search(text):
        return True
    if _FINAL.search(text):
        return False
    ended = sum(bool(_FINAL.search(t.rstrip())) for t in others)
    last_line = text.splitlines()[-1]
    return len(last_line.split()) >= 8 and ended >= 0.75 * len(others) > 0


def trim_truncated(messages: list[dict]) -> list[dict]:
    """A generation that hit its token limit ends mid-turn: drop that turn, then any unanswered user turn."""
    messages = messages[:-1]
    if messages and messages[-1]["role"] == "user":
        messages = messages[:-1]
    return messages
