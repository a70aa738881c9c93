"""Strict parsing of the judge's answers. An answer is either exactly what was asked for or malformed:
nothing is guessed, clipped or coerced (a "4", a 4.0, a 6 or a missing key is malformed, never a score)."""

from __future__ import annotations

import json

from hiwar.judge.rubric import SCALE, VERDICTS


class Malformed(ValueError):
    """The answer is not the JSON object the prompt asked for; the message says why, in a few words."""


def _object(text: str) -> dict:
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise Malformed("a key appears twice")
        return dict(pairs)

    try:
        data = json.loads(text.strip(), object_pairs_hook=no_duplicates)
    except Malformed:
        raise
    except ValueError:
        raise Malformed("not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    return data


def parse_scores(text: str, criteria: list[str]) -> dict[str, int]:
    """{criterion: integer score}: every criterion present, each an integer on the scale, no other key."""
    data = _object(text)
    missing = [c for c in criteria if c not in data]
    if missing:
        raise Malformed(f"missing key {missing[0]!r}")
    extra = sorted(set(data) - set(criteria))
    if extra:
        raise Malformed(f"unexpected key {extra[0]!r}")
    for criterion in criteria:
        value = data[criterion]
        if type(value) is not int:  # bool is an int subclass; 4.0 and "4" are not integers here
            raise Malformed(f"{criterion}: {value!r} is not an integer")
        if not SCALE[0] <= value <= SCALE[1]:
            raise Malformed(f"{criterion}: {value} is off the scale {SCALE[0]}-{SCALE[1]}")
    return {c: data[c] for c in criteria}


def parse_verdict(text: str) -> str:
    """"A", "B" or "tie", from exactly {"winner": ...}."""
    data = _object(text)
    if set(data) != {"winner"}:
        raise Malformed("expected exactly the key 'winner'")
    if data["winner"] not in VERDICTS:
        raise Malformed(f"winner: {data['winner']!r} is not one of A, B, tie")
    return data["winner"]
