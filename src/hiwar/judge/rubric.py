"""The rubric (templates/rubric.yaml) and the judge prompts (templates/<template>.<language>.j2).

Three prompts: a whole conversation scored on the dataset criteria, one reply scored on the human sheets'
criteria, and two replies compared. The answer format line lists exactly the keys the parser accepts.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jinja2
import yaml

from hiwar.errors import HiwarError

SCALE = (1, 5)
VERDICTS = ("A", "B", "tie")  # a pairwise answer: the first reply, the second, or neither
LABELS = {"ar": {"user": "المستخدم", "assistant": "المساعد", "system": "النظام"},
          "en": {"user": "User", "assistant": "Assistant", "system": "System"}}


def _templates():
    return resources.files("hiwar.judge") / "templates"


@lru_cache(maxsize=None)
def rubric() -> dict:
    return yaml.safe_load((_templates() / "rubric.yaml").read_text(encoding="utf-8"))


def check_criteria(criteria: list[str], key: str) -> None:
    """Every criterion must be described in the rubric; `key` names the params key that lists them."""
    known = rubric()["criteria"]
    unknown = [c for c in criteria if c not in known]
    if unknown:
        raise HiwarError(f"params.yaml: {key}: unknown criterion {unknown[0]!r} (expected criteria described in "
                         f"src/hiwar/judge/templates/rubric.yaml: {', '.join(known)})")


@lru_cache(maxsize=None)
def _macros(template: str, language: str):
    path = _templates() / f"{template}.{language}.j2"
    if not path.is_file():
        raise HiwarError(f"params.yaml: judge.template: no file {template}.{language}.j2 in src/hiwar/judge/templates "
                         "(expected e.g. template: rubric with language: ar or en)")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(path.read_text(encoding="utf-8")).module


def schema(criteria: list[str]) -> str:
    """The answer format line, e.g. {"fluency": <1-5>, "safety": <1-5>}."""
    return "{" + ", ".join(f"{json.dumps(c)}: <{SCALE[0]}-{SCALE[1]}>" for c in criteria) + "}"


def score_schema(criteria: list[str]) -> dict:
    """The JSON schema of a score answer: every criterion an `enum` of the scale's integers (llama.cpp's
    grammar ignores minimum and maximum), and no other key."""
    score = {"type": "integer", "enum": list(range(SCALE[0], SCALE[1] + 1))}
    return {"type": "object", "properties": {c: score for c in criteria}, "required": list(criteria),
            "additionalProperties": False}


def verdict_schema() -> dict:
    """The JSON schema of a pairwise verdict: exactly {"winner": "A" | "B" | "tie"}."""
    return {"type": "object", "properties": {"winner": {"type": "string", "enum": list(VERDICTS)}},
            "required": ["winner"], "additionalProperties": False}


def format_messages(messages: list[dict], language: str) -> str:
    return "\n".join(f"{LABELS[language][m['role']]}: {m['content'].strip()}" for m in messages)


class Prompts:
    """Renders the judge's requests for one template, language and pair of criteria lists."""

    def __init__(self, template: str, language: str):
        self.language = language
        self.macros = _macros(template, language)

    def _criteria(self, names: list[str]) -> list[dict]:
        return [{"name": n, "description": rubric()["criteria"][n][self.language]} for n in names]

    def conversation(self, messages: list[dict], topic: str, country: str, criteria: list[str]) -> str:
        return str(self.macros.conversation(format_messages(messages, self.language), topic, country,
                                            self._criteria(criteria), rubric()["scale"][self.language],
                                            schema(criteria))).strip()

    def reply(self, history: list[dict], answer: str, criteria: list[str]) -> str:
        return str(self.macros.reply(format_messages(history, self.language), answer.strip(),
                                     self._criteria(criteria), rubric()["scale"][self.language],
                                     schema(criteria))).strip()

    def pairwise(self, history: list[dict], reply_a: str, reply_b: str, criteria: list[str]) -> str:
        return str(self.macros.pairwise(format_messages(history, self.language), reply_a.strip(), reply_b.strip(),
                                        self._criteria(criteria))).strip()
