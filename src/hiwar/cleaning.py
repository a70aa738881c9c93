"""Cleaning: raw generator text -> `messages`, checked with Arabic-aware rules, exact duplicates removed.

Every input row ends up either kept or rejected with all of its reason codes; the counts add up.
"""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from hiwar.arabic import arabic_ratio, normalize
from hiwar.params import CleanParams
from hiwar.prompts import AI, HUMAN

# Turn labels generators write, mapped to roles. Longest first so "[|AI|]" is not read as "AI".
LABELS = {
    re.escape(HUMAN): "user", re.escape(AI): "assistant",
    "المستخدم": "user", "المساعد": "assistant",
    "User": "user", "Assistant": "assistant",
}
LABEL_RE = re.compile(
    r"(?:^|\n)\s*(?:" + "|".join(f"(?P<l{i}>{pat})" for i, pat in enumerate(LABELS)) + r")\s*:?\s*"
)
ROLE_OF = {f"l{i}": role for i, role in enumerate(LABELS.values())}

PROVENANCE = ["conversation_id", "cell_id", "topic", "country", "sample_index", "exchanges", "persona",
              "generator", "template", "prompt_hash"]


def parse_dialogue(text: str) -> list[dict]:
    """Split labelled text into turns. Text before the first label (prompt echo, preambles) is dropped."""
    matches = list(LABEL_RE.finditer(text))
    turns = []
    for match, following in zip(matches, matches[1:] + [None]):
        role = ROLE_OF[match.lastgroup]
        end = following.start() if following else len(text)
        turns.append({"role": role, "content": text[match.end():end].strip()})
    return turns


def trim_truncated(messages: list[dict]) -> list[dict]:
    """A generation that hit its token limit ends mid-turn: drop that turn, then any unanswered user turn."""
    messages = messages[:-1]
    if messages and messages[-1]["role"] == "user":
        messages = messages[:-1]
    return messages


def check(messages: list[dict], params: CleanParams) -> list[str]:
    """Reason codes why a parsed conversation cannot be kept (empty when it passes)."""
    if not messages:
        return ["unparseable"]
    reasons = []
    roles = [m["role"] for m in messages]
    if any(role != ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(roles)) or len(roles) % 2:
        reasons.append("bad_alternation")
    exchanges = sum(role == "assistant" for role in roles)
    if exchanges < params.min_exchanges:
        reasons.append("too_few_exchanges")
    if exchanges > params.max_exchanges:
        reasons.append("too_many_exchanges")
    lengths = [len(m["content"]) for m in messages]
    if min(lengths) < params.min_turn_chars:
        reasons.append("turn_too_short")
    if max(lengths) > params.max_turn_chars:
        reasons.append("turn_too_long")
    if min(arabic_ratio(m["content"]) for m in messages) < params.min_arabic_ratio:
        reasons.append("low_arabic_ratio")
    return reasons


def dedup_key(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}:{normalize(m['content'])}" for m in messages)


def clean(raw: pd.DataFrame, params: CleanParams) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    kept, rejected = [], []
    seen: dict[str, str] = {}
    trimmed = 0
    for row in raw.to_dict("records"):
        messages: list[dict] = []
        if row["finish_reason"] == "error":
            reasons = ["generation_failed"]
        elif not str(row["raw_text"]).strip():
            reasons = ["empty_output"]
        else:
            messages = parse_dialogue(row["raw_text"])
            if row["finish_reason"] == "length" and messages:
                messages = trim_truncated(messages)
                trimmed += 1
            reasons = check(messages, params)
        if not reasons:
            key = dedup_key(messages)
            if key in seen:
                reasons = ["exact_duplicate"]
                row["duplicate_of"] = seen[key]
            else:
                seen[key] = row["conversation_id"]
        out = {c: row[c] for c in PROVENANCE} | {"messages": messages}
        if reasons:
            rejected.append(out | {"reasons": reasons, "raw_text": row["raw_text"], "duplicate_of": row.get("duplicate_of")})
        else:
            kept.append(out)
    kept_df = pd.DataFrame(kept, columns=PROVENANCE + ["messages"])
    rejected_df = pd.DataFrame(rejected, columns=PROVENANCE + ["messages", "reasons", "raw_text", "duplicate_of"])
    reason_counts = Counter(r for reasons in rejected_df["reasons"] for r in reasons)
    metrics = {
        "input": int(len(raw)),
        "kept": int(len(kept_df)),
        "rejected": int(len(rejected_df)),
        "kept_fraction": round(len(kept_df) / max(len(raw), 1), 4),
        "trimmed_truncated_turn": trimmed,
        "reasons": dict(sorted(reason_counts.items())),
    }
    return kept_df, rejected_df, metrics
