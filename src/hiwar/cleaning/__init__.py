"""Cleaning: raw generator text -> `messages`, checked by Arabic-aware rules, duplicates removed.

Every input row ends up either kept or rejected with all of its reason codes, so the counts add up:
parse (parse.py) -> rules (rules.py) -> exact and near-duplicate removal (dedup.py), in input order, so
the first of a group of duplicates is the one kept.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pandas as pd
from tqdm import tqdm

from hiwar.dedup import NearDupIndex, conversation_text
from hiwar.cleaning.parse import parse_dialogue, trim_truncated
from hiwar.cleaning.rules import check, match_key
from hiwar.params import CleanParams

PROVENANCE = ["conversation_id", "cell_id", "topic", "country", "sample_index", "exchanges", "persona",
              "generator", "template", "prompt_hash"]


def decide(row: dict, params: CleanParams) -> tuple[list[dict], list[str], list[str], bool]:
    """Parsed messages, their match keys, reason codes (before dedup), and whether a cut turn was trimmed."""
    if row["finish_reason"] == "error":
        return [], [], ["generation_failed"], False
    if not str(row["raw_text"]).strip():
        return [], [], ["empty_output"], False
    messages = parse_dialogue(row["raw_text"], row.get("prompt"))
    trimmed = row["finish_reason"] == "length" and bool(messages)
    if trimmed:
        messages = trim_truncated(messages)
        if not messages:
            return [], [], ["too_few_exchanges"], True
    keys = [match_key(m["content"]) for m in messages]
    return messages, keys, check(messages, params, keys), trimmed


def clean(raw: pd.DataFrame, params: CleanParams, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    kept, rejected = [], []
    exact: dict[str, str] = {}
    near = NearDupIndex(params.near_dup_threshold, params.minhash_perm, params.shingle_chars)
    trimmed = 0
    rows = raw.to_dict("records")
    for row in tqdm(rows, desc="clean", unit="conv", disable=not progress, dynamic_ncols=True):
        messages, keys, reasons, was_trimmed = decide(row, params)
        trimmed += was_trimmed
        duplicate_of = None
        if not reasons:
            text = conversation_text(messages, keys)
            if text in exact:
                reasons, duplicate_of = ["exact_duplicate"], exact[text]
            else:
                signature = near.signature(text)
                similar = near.matches(signature)
                if similar:
                    reasons, duplicate_of = ["near_duplicate"], similar[0]
                else:
                    exact[text] = row["conversation_id"]
                    near.add(row["conversation_id"], signature)
        out = {c: row.get(c) for c in PROVENANCE} | {"messages": messages}
        if reasons:
            rejected.append(out | {"reasons": reasons, "raw_text": row["raw_text"], "duplicate_of": duplicate_of})
        else:
            kept.append(out)
    kept_df = pd.DataFrame(kept, columns=PROVENANCE + ["messages"])
    rejected_df = pd.DataFrame(rejected, columns=PROVENANCE + ["messages", "reasons", "raw_text", "duplicate_of"])
    return kept_df, rejected_df, clean_metrics(raw, kept_df, rejected_df, trimmed)


def clean_metrics(raw: pd.DataFrame, kept: pd.DataFrame, rejected: pd.DataFrame, trimmed: int) -> dict:
    """Totals, and counts per reason, per topic and per country; kept + rejected == input everywhere."""
    def breakdown(column: str) -> dict:
        table = defaultdict(lambda: {"input": 0, "kept": 0, "rejected": 0, "reasons": Counter()})
        for value in raw[column]:
            table[value]["input"] += 1
        for value in kept[column]:
            table[value]["kept"] += 1
        for value, reasons in zip(rejected[column], rejected["reasons"]):
            table[value]["rejected"] += 1
            table[value]["reasons"].update(reasons)
        return {k: v | {"reasons": dict(sorted(v["reasons"].items()))} for k, v in sorted(table.items())}

    reasons = Counter(r for rs in rejected["reasons"] for r in rs)
    return {
        "input": int(len(raw)),
        "kept": int(len(kept)),
        "rejected": int(len(rejected)),
        "kept_fraction": round(len(kept) / max(len(raw), 1), 4),
        "trimmed_truncated_turn": int(trimmed),
        "reasons": dict(sorted(reasons.items())),
        "per_topic": breakdown("topic"),
        "per_country": breakdown("country"),
    }


__all__ = ["clean", "parse_dialogue", "trim_truncated", "check", "decide", "PROVENANCE"]
