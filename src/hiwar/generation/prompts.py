"""Prompt templates (Jinja files in generation/templates, one per generator family) and the dialogue text format
that generators write and the cleaning stage parses.

A template named `chat` renders only the user's request; the backend wraps it in the model's own chat
template (a server's /chat/completions, or the tokenizer's chat template locally). Every other template
renders the whole prompt text.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jinja2
import jinja2.meta

from hiwar.errors import HiwarError

HUMAN, AI = "[|Human|]", "[|AI|]"
# `template: chat` renders only the request; the model's own chat template (or the server's) wraps it.
CHAT_TEMPLATE_NAME = "chat"


def _template_path(name: str):
    return resources.files("hiwar.generation") / "templates" / f"{name}.j2"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


@lru_cache(maxsize=None)
def load_template(name: str) -> jinja2.Template:
    path = _template_path(name)
    if not path.is_file():
        known = sorted(p.name[:-3] for p in (resources.files("hiwar.generation") / "templates").iterdir() if p.name.endswith(".j2"))
        raise HiwarError(f"params.yaml: generate.template: unknown template {name!r} (expected one of: {', '.join(known)})")
    return _environment().from_string(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def template_variables(name: str) -> frozenset[str]:
    load_template(name)
    return frozenset(jinja2.meta.find_undeclared_variables(_environment().parse(_template_path(name).read_text("utf-8"))))


def render_prompt(template: str, *, topic_ar: str, topic_description: str, country_ar: str | None,
                  persona_ar: str | None, exchanges: int, examples: list[str] = ()) -> str:
    if examples and "examples" not in template_variables(template):
        raise HiwarError(f"params.yaml: generate.few_shot: template {template!r} shows no examples "
                         "(expected few_shot: 0, or a template that uses `examples`, e.g. jais or chat)")
    return load_template(template).render(
        topic_ar=topic_ar, topic_description=topic_description, country_ar=country_ar,
        persona_ar=persona_ar, exchanges=exchanges, examples=list(examples),
    )


def format_dialogue(messages: list[dict]) -> str:
    """A conversation as generators write it: one labelled line per turn."""
    label = {"user": HUMAN, "assistant": AI}
    return "\n".join(f"{label[m['role']]} {m['content'].strip()}" for m in messages if m["role"] in label)


def dialogue_schema(exchanges: int, max_chars: int | None = None) -> dict:
    """The JSON schema of a structured dialogue (generate.structured): exactly `exchanges` user/assistant pairs,
    {"exchanges": [{"user": ..., "assistant": ...}, ...]}, each turn at most `max_chars` long if given. The
    cleaner reads this shape directly."""
    text = {"type": "string", "minLength": 1} | ({"maxLength": max_chars} if max_chars else {})
    turn = {"type": "object", "properties": {"user": text, "assistant": text},
            "required": ["user", "assistant"], "additionalProperties": False}
    return {"type": "object", "additionalProperties": False, "required": ["exchanges"],
            "properties": {"exchanges": {"type": "array", "items": turn, "minItems": exchanges, "maxItems": exchanges}}}
