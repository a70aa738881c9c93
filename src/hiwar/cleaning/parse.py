"""From a generator's raw text to `messages`.

Generators label turns in many ways; a label is recognised only at the start of a line:
`[|Human|]` / `[|AI|]` (Jais); a word label followed by a colon (المستخدم / المساعد, السائل / المجيب,
س / ج, User / Assistant, Human / AI), optionally inside markdown bold, after a bullet, a markdown heading
mark, a speaker emoji or a turn number, or with a turn number after it; the same word alone on its line
(a heading or bold line, the turn's text on the lines below); or a bare speaker emoji (👤 / 🤖). Word
labels need the colon or a line of their own, so that a sentence starting with "User" is not a turn.
When none of these occurs, two other speaker names with a colon (العميل / الموظف, المريض / الصيدلي) are
read as user and assistant, the first to speak being the user. A dialogue written on one line, its labels
inline, is read from the same labels wherever they stand, when that gives more turns in proper alternation.

An answer in JSON is read as JSON: a list of messages (`role`/`content`, or ShareGPT's `from`/`value`), bare
or in a ```json fence, after a lead-in line or not, or an object holding that list under `messages`
(`conversation`, `dialogue`). JSON that breaks off (the generation was cut) gives its complete messages and
the cut one, and says it was cut (`Parsed.cut`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

USER_WORDS = ["المستخدم", "السائل", "User", "Human", "س"]
ASSISTANT_WORDS = ["المساعد", "المجيب", "Assistant", "AI", "ج"]
USER_EMOJI, ASSISTANT_EMOJI = "👤🧑🙋👩👨🙂", "🤖💻"

_PREFIX = r"^[ \t]*(?:[-*•][ \t]+)?(?:\(?\d+[.)\-][ \t]*)?(?:#{1,6}[ \t]*)?(?:\*\*)?[ \t]*"
_NUMBER = r"(?:[ \t]*\(?\d+\)?)?"


def _word_label(words: list[str], emoji: str) -> str:
    alternatives = "|".join(words)
    # colon inside or outside the bold markers: **المستخدم:** or **المستخدم**:, or the label alone on its line
    return (rf"(?:[{emoji}][ \t]*)?(?:\*\*)?(?:{alternatives}){_NUMBER}"
            rf"(?:[ \t]*(?::[ \t]*(?:\*\*)?|(?:\*\*)[ \t]*:)|(?:\*\*)?[ \t]*(?:\n|$))")


LABEL_RE = re.compile(
    _PREFIX + rf"(?:(?P<user>\[\|Human\|\][ \t]*:?|{_word_label(USER_WORDS, USER_EMOJI)}|[{USER_EMOJI}](?=[ \t]))"
    rf"|(?P<assistant>\[\|AI\|\][ \t]*:?|{_word_label(ASSISTANT_WORDS, ASSISTANT_EMOJI)}|[{ASSISTANT_EMOJI}](?=[ \t])))[ \t]*",
    re.MULTILINE | re.IGNORECASE,
)
# The same labels anywhere in a line (a dialogue written on one line), after a space, punctuation or the start:
# the Jais markers, and word labels with their colon (bold or not).
_INLINE_WORD = r"(?:\*\*)?(?:{words})[ \t]*(?::[ \t]*(?:\*\*)?|\*\*[ \t]*:)"
INLINE_RE = re.compile(
    r"(?:(?<=^)|(?<=[\s.!?؟،,;:)»\"*]))"
    rf"(?:(?P<user>\[\|Human\|\][ \t]*:?|{_INLINE_WORD.format(words='|'.join(USER_WORDS))})"
    rf"|(?P<assistant>\[\|AI\|\][ \t]*:?|{_INLINE_WORD.format(words='|'.join(ASSISTANT_WORDS))}))[ \t]*",
    re.IGNORECASE,
)
# Any other speaker name of one or two words with a colon, at the start of a line (the fallback).
SPEAKER_RE = re.compile(_PREFIX + r"(?P<name>[^\W\d_]{2,15}(?: [^\W\d_]{2,15})?)(?:\*\*)?[ \t]*:(?:\*\*)?[ \t]*",
                        re.MULTILINE)
# The sections of an instruction wrapper (Jais: ### Instruction / ### Input / ### Response).
SECTION_RE = re.compile(r"###[ \t]*(?P<section>Instruction|Input|Response)[ \t]*:", re.IGNORECASE)
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

    if not SPECIAL_RE.search(text):
        return text
    bare = SPECIAL_RE.sub("\n", text)
    if len(LABEL_RE.findall(bare)) >= 2:
        return bare
    return SPECIAL_RE.sub(lambda m: "\n" + _ROLE_LABEL.get(role(m), "") + " ", text)


def strip_echo(text: str, prompt: str | None = None) -> str:
    """Drop an echoed prompt: the prompt itself at the start, and an instruction wrapper's instruction
    section. A model that repeats the wrapper writes the dialogue in its input section, its response
    section, or across both; their bodies are kept, in order."""
    if prompt and text.startswith(prompt):
        text = text[len(prompt):]
    sections = list(SECTION_RE.finditer(text))
    if not sections:
        return text
    bodies = [text[:sections[0].start()]]
    for section, following in zip(sections, sections[1:] + [None]):
        body = text[section.end():following.start() if following else len(text)]
        if section.group("section").lower() != "instruction" and LABEL_RE.sub("", "\n" + body).strip():
            bodies.append(body)  # a section holding only a label (`### Response: [|AI|]`) adds no turn
    return "\n".join(bodies)


def _turns(text: str, matches: list[re.Match], role_of) -> list[dict]:
    turns = []
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(text)
        turns.append({"role": role_of(match), "content": text[match.end():end].strip()})
    return turns


def _speaker_turns(text: str) -> list[dict]:
    """Turns labelled with two other speaker names (the fallback): the first name is the user's."""
    matches = list(SPEAKER_RE.finditer(text))
    names = list(dict.fromkeys(m.group("name") for m in matches))
    if len(names) < 2:
        return []
    user, assistant = names[:2]
    matches = [m for m in matches if m.group("name") in (user, assistant)]
    return _turns(text, matches, lambda m: "user" if m.group("name") == user else "assistant")


# --- JSON answers ---------------------------------------------------------------------------------------
# Where a JSON message list starts: `[{"role"`, or `{"messages": [{"role"` (keys in any order).
_KEY = r'"(?:role|content|from|value)"\s*:'
JSON_START = re.compile(rf'\[\s*\{{\s*{_KEY}|\{{\s*"(?:messages|conversation|dialogue|dialog)"\s*:\s*\[\s*\{{\s*{_KEY}')
_ROLES = {"user": "user", "human": "user", "المستخدم": "user", "السائل": "user",
          "assistant": "assistant", "ai": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
          "المساعد": "assistant", "المجيب": "assistant", "system": "system"}
_PARTIAL_ROLE = re.compile(r'"(?:role|from)"\s*:\s*"([^"\\]*)"')
_PARTIAL_CONTENT = re.compile(r'"(?:content|value)"\s*:\s*"((?:[^"\\]|\\.)*)', re.DOTALL)


def _json_string(body: str) -> str:
    """A JSON string body (without quotes) decoded; a body cut inside an escape loses that escape."""
    for end in (len(body), len(body) - 1, len(body) - 5):
        try:
            return json.loads(f'"{body[:max(end, 0)]}"')
        except ValueError:
            continue
    return body


def _messages_of(items: list, named: dict) -> list[dict] | None:
    """role/content dicts -> messages; None when an item is not a message. Roles other than the known ones
    are read like speaker names: the first to speak is the user, the second the assistant."""
    messages = []
    for item in items:
        if not isinstance(item, dict):
            return None
        role, content = item.get("role", item.get("from")), item.get("content", item.get("value"))
        if not isinstance(role, str) or content is None:
            return None
        key = role.strip().lower()
        if key not in _ROLES:
            if key not in named and len(named) < 2:
                named[key] = ("user", "assistant")[len(named)]
            if key not in named:
                return None
        if isinstance(content, list):  # content in parts: [{"type": "text", "text": ...}]
            content = "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        messages.append({"role": _ROLES.get(key) or named[key],
                         "content": content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)})
    return messages


def _salvage(text: str, named: dict) -> tuple[list[dict], bool]:
    """The messages of a message list that does not parse as a whole, and whether it breaks off: every complete
    message object, then the cut one (its content as far as it goes, possibly empty). A list whose objects are
    all complete and closed by its `]` (a stray comma) is whole, not cut."""
    decoder, messages, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) >= 0:
        try:
            item, position = decoder.raw_decode(text, start)
        except ValueError:
            role, content = _PARTIAL_ROLE.search(text, start), _PARTIAL_CONTENT.search(text, start)
            key = role.group(1).strip().lower() if role else ""
            role_name = _ROLES.get(key) or named.get(key) or ("assistant" if messages and messages[-1]["role"] == "user"
                                                             else "user")
            messages.append({"role": role_name, "content": _json_string(content.group(1)) if content else ""})
            return messages, True
        if isinstance(item, dict) and any(k in item for k in ("role", "from")):
            messages += _messages_of([item], named) or []
        elif isinstance(item, dict):  # the outer object ({"messages": [...]}): look inside it
            position = start + 1
    return messages, "]" not in text[position:]


def json_dialogue(text: str) -> tuple[list[dict], bool] | None:
    """(messages, cut) of an answer holding a JSON message list, or None when it holds none (or when labelled
    turns come before it: then it is an example inside a turn). A leading system message (the prompt echoed)
    is dropped."""
    start = JSON_START.search(text)
    if not start:
        return None
    label = LABEL_RE.search(text)
    if label and label.start() < start.start():  # labelled turns first: JSON inside a turn is an example
        return None
    named: dict = {}
    try:
        data, _ = json.JSONDecoder().raw_decode(text, start.start())
    except ValueError:
        messages, cut = _salvage(text[text.index("[", start.start()) + 1:], named)
    else:
        if isinstance(data, dict):
            data = next(data[k] for k in ("messages", "conversation", "dialogue", "dialog") if k in data)
        messages, cut = _messages_of(data, named), False
        if messages is None:
            return None
    while messages and messages[0]["role"] == "system":
        messages = messages[1:]
    return [m for m in messages if m["role"] != "system"], cut


# The structured shape generate.structured asks for: {"exchanges": [{"user": ..., "assistant": ...}, ...]}.
STRUCTURED_START = re.compile(r'^\s*\{\s*"exchanges"\s*:\s*\[')


def structured_dialogue(text: str) -> tuple[list[dict], bool] | None:
    """(messages, cut) of an answer in the structured shape, or None when the answer is not in it. An answer
    that breaks off keeps its complete exchanges and is cut."""
    start = STRUCTURED_START.match(text)
    if not start:
        return None
    try:
        data = json.loads(text)
        pairs, cut = data["exchanges"], False
        if set(data) != {"exchanges"} or not isinstance(pairs, list):
            return None
    except (ValueError, KeyError, TypeError):
        decoder, pairs, position, cut = json.JSONDecoder(), [], start.end(), True
        while (brace := text.find("{", position)) >= 0:
            try:
                pair, position = decoder.raw_decode(text, brace)
            except ValueError:
                break
            pairs.append(pair)
    messages = []
    for pair in pairs:
        if not (isinstance(pair, dict) and isinstance(pair.get("user"), str) and isinstance(pair.get("assistant"), str)):
            return None
        messages += [{"role": "user", "content": pair["user"]}, {"role": "assistant", "content": pair["assistant"]}]
    return messages, cut


def _alternates(turns: list[dict]) -> bool:
    return all(t["role"] == ("user", "assistant")[i % 2] for i, t in enumerate(turns))


@dataclass
class Parsed:
    """Turns in order, and whether the answer was seen to break off mid-structure (cut JSON): then the last
    turn is the cut one."""
    messages: list[dict]
    cut: bool = False
    form: str = "text"  # json_schema (the structured shape), json (a message list in free text) or text (labels)


def parse(text: str, prompt: str | None = None) -> Parsed:
    """A raw answer's turns: the structured shape, a JSON message list, or else labelled turns."""
    if "{" in text:
        stripped = strip_special_tokens(text)
        found = structured_dialogue(stripped)
        if found is not None:
            return Parsed(*found, form="json_schema")
        found = json_dialogue(stripped)
        if found is not None:
            return Parsed(*found, form="json")
    return Parsed(parse_dialogue(text, prompt))


def parse_dialogue(text: str, prompt: str | None = None) -> list[dict]:
    """Labelled turns in order. Tokenizer markers are removed; text before the first label (preambles,
    prompt echo) is dropped, and so are an echoed request turn ("write a dialogue about ...") and an
    empty assistant label left by a wrapper's `### Response: [|AI|]` before the dialogue starts."""
    text = strip_echo(strip_special_tokens(text), prompt)
    labels = list(LABEL_RE.finditer(text))
    turns = _turns(text, labels, lambda m: m.lastgroup)
    if labels and (len(turns) < 2 or not _alternates(turns)):
        # A dialogue on one line: the first label starts a line, the others stand inline. (Labels only inline,
        # "... فقال المستخدم: ...", are narrative, not a dialogue.)
        inline = list(INLINE_RE.finditer(text))
        if inline and labels[0].start() <= inline[0].start() < labels[0].end():
            inline_turns = _turns(text, inline, lambda m: m.lastgroup)
            if len(inline_turns) > len(turns) and _alternates(inline_turns):
                turns = inline_turns
    if len(turns) < 2:
        turns = _speaker_turns(text) or turns
    while turns and ((turns[0]["role"] == "user" and REQUEST_RE.search(turns[0]["content"]) and len(turns) > 2)
                     or (turns[0]["role"] == "assistant" and not turns[0]["content"])):
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
# A sign-off that ends a turn without a full stop ("... بهدوء. بالتوفيق", "... قبل ما تقدمي. وصحتين").
_CLOSING = re.compile(
    r"(?:^|[\s.،,!؟])(?:و?بالتوفيق|و?صحتين|و?بالهنا(?:ء)?(?: والشفا(?:ء)?)?|بالعافية|و?بالسلامة|مع السلامة|تحياتي"
    r"|في أمان الله|(?:إن|ان) شاء الله|الله يوفقك|ربي يوفقك|يعطيك العافية|دمتم? بخير|حظا سعيدا|موفقين?"
    r"|رمضان كريم|كل عام وأنتم? بخير|good luck|cheers)\s*$", re.IGNORECASE)


def looks_cut(turn: str, others: list[str], hit_limit: bool = False, unanswered: bool = False) -> bool:
    """Whether a conversation's last turn was cut mid-sentence, judged from its text, whatever finish_reason
    says (servers and proxies report "stop" on cut answers too, and a stop string can cut a turn). A turn
    ending without final punctuation counts as cut when the generation hit its token limit (`hit_limit`),
    when it is a user turn left unanswered at the end (`unanswered`: the model was writing the next question),
    or when it is long and the other turns of the conversation do end with it. A turn that ends a sentence
    or with a sign-off (بالتوفيق، وصحتين ...) is not cut, whatever the limit."""
    text = turn.rstrip()
    if not text:
        return False
    if _CUT_END.search(text):
        return True
    if _FINAL.search(text):
        return False
    if _CLOSING.search(text):
        return False
    if hit_limit or unanswered:
        return True
    ended = sum(bool(_FINAL.search(t.rstrip())) for t in others)
    last_line = text.splitlines()[-1]
    return len(last_line.split()) >= 8 and ended >= 0.75 * len(others) > 0


def trim_truncated(messages: list[dict]) -> list[dict]:
    """A generation that hit its token limit ends mid-turn: drop that turn, then any unanswered user turn."""
    messages = messages[:-1]
    if messages and messages[-1]["role"] == "user":
        messages = messages[:-1]
    return messages
