"""Prompt templates (Jinja files in hiwar/templates, one per generator family) and the dialogue text format
that generators write and the cleaning stage parses."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jinja2

from hiwar.errors import HiwarError

HUMAN, AI = "[|Human|]", "[|AI|]"


@lru_cache(maxsize=None)
def load_template(name: str) -> jinja2.Template:
    path = resources.files("hiwar") / "templates" / f"{name}.j2"
    if not path.is_file():
        known = sorted(p.name[:-3] for p in (resources.files("hiwar") / "templates").iterdir() if p.name.endswith(".j2"))
        raise HiwarError(f"params.yaml: generate.template: unknown template {name!r} (expected one of: {', '.join(known)})")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(path.read_text(encoding="utf-8"))


def render_prompt(template: str, *, topic_ar: str, topic_description: str, country_ar: str | None,
                  persona_ar: str | None, exchanges: int) -> str:
    return load_template(template).render(
        topic_ar=topic_ar, topic_description=topic_description, country_ar=country_ar,
        persona_ar=persona_ar, exchanges=exchanges,
    )


def format_dialogue(messages: list[dict]) -> str:
    """A conversation as generators write it: one labelled line per turn."""
    label = {"user": HUMAN, "assistant": AI}
    return "\n".join(f"{label[m['role']]} {m['content'].strip()}" for m in messages if m["role"] in label)
