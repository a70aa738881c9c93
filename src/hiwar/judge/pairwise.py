"""Pairwise model comparison on the evaluate stage's replies, each pair judged in both orders.

Pairs: every fine-tuned model against its own base, and every fine-tuned model against every baseline.
An item (one scored turn, one pair) is asked twice, with the replies swapped. Its verdict is a win only
when both orders name the same model; any disagreement is a tie. The position-bias rate is the share of
items (both orders answered) whose verdict, read as a model name, changes with the order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiwar.pairwise import win_tie_loss
from hiwar.stats import bootstrap_ci
from hiwar.judge.engine import Answer, Task
from hiwar.judge.rubric import Prompts, verdict_schema

REPLY_COLUMNS = ["turn", "conversation_id", "topic", "history", "model", "kind", "reply"]


def model_pairs(replies: pd.DataFrame) -> list[tuple[str, str]]:
    """(first, second) variant names, "<model>_<kind>": fine-tuned vs base, fine-tuned vs each baseline."""
    variants = set(replies["model"] + "_" + replies["kind"])
    finetuned = sorted(v[: -len("_finetuned")] for v in variants if v.endswith("_finetuned"))
    baselines = sorted(v for v in variants if v.endswith("_baseline"))
    pairs = [(f"{m}_finetuned", f"{m}_base") for m in finetuned if f"{m}_base" in variants]
    return pairs + [(f"{m}_finetuned", b) for m in finetuned for b in baselines]


def pair_items(replies: pd.DataFrame) -> pd.DataFrame:
    """One row per (turn, pair): item id, the turn's history, and both replies."""
    frame = replies.assign(variant=replies["model"] + "_" + replies["kind"])
    by_variant = {v: g.set_index("turn") for v, g in frame.groupby("variant")}
    rows = []
    for a, b in model_pairs(replies):
        turns = by_variant[a].index.intersection(by_variant[b].index)
        for turn in sorted(turns):
            left, right = by_variant[a].loc[turn], by_variant[b].loc[turn]
            rows.append({"item": f"{turn}:{a}~{b}", "turn": int(turn), "conversation_id": left["conversation_id"],
                         "topic": left["topic"], "history": list(left["history"]), "model_a": a, "model_b": b,
                         "reply_a": left["reply"], "reply_b": right["reply"]})
    return pd.DataFrame(rows, columns=["item", "turn", "conversation_id", "topic", "history", "model_a", "model_b",
                                       "reply_a", "reply_b"])


def pairwise_tasks(items: pd.DataFrame, prompts: Prompts, criteria: list[str]) -> list[Task]:
    """Two requests per item: model_a's reply shown first ("ab"), then second ("ba")."""
    tasks, schema = [], verdict_schema()
    for row in items.itertuples():
        tasks.append(Task(f"{row.item}|ab", prompts.pairwise(row.history, row.reply_a, row.reply_b, criteria), schema))
        tasks.append(Task(f"{row.item}|ba", prompts.pairwise(row.history, row.reply_b, row.reply_a, criteria), schema))
    return tasks


def _as_model(verdict: str | None, first: str, second: str) -> str | None:
    return {None: None, "A": first, "B": second, "tie": "tie"}[verdict]


def combine(items: pd.DataFrame, answers: list[Answer]) -> pd.DataFrame:
    """Per item: what each order said (as model names), the combined winner, and whether it flipped.
    Items where either order got no valid answer keep status `failed` and no winner."""
    by_id = {a.id: a for a in answers}
    rows = []
    for row in items.itertuples():
        ab, ba = by_id[f"{row.item}|ab"], by_id[f"{row.item}|ba"]
        said_ab = _as_model(ab.value, row.model_a, row.model_b)
        said_ba = _as_model(ba.value, row.model_b, row.model_a)
        both = ab.status == "judged" and ba.status == "judged"
        rows.append({"item": row.item, "turn": row.turn, "conversation_id": row.conversation_id, "topic": row.topic,
                     "model_a": row.model_a, "model_b": row.model_b, "said_ab": said_ab, "said_ba": said_ba,
                     "winner": (said_ab if said_ab == said_ba else "tie") if both else None,
                     "flipped": (said_ab != said_ba) if both else None,
                     "first_position_won_both": (ab.value == "A" and ba.value == "A") if both else None,
                     "status": "judged" if both else "failed",
                     "error": None if both else (ab.error if ab.status != "judged" else ba.error)})
    return pd.DataFrame(rows)


def _share_ci(flags: np.ndarray, rounds: int, seed: int) -> list[float]:
    return bootstrap_ci(flags, rounds, seed) if len(flags) else [float("nan"), float("nan")]


def pairwise_metrics(verdicts: pd.DataFrame, rounds: int, seed: int) -> dict:
    judged = verdicts[verdicts["status"].eq("judged")]
    flags = judged["flipped"].to_numpy(dtype=float)
    return {
        "items": int(len(verdicts)), "judged": int(len(judged)), "failed": int(len(verdicts) - len(judged)),
        "position_bias_rate": round(float(flags.mean()), 4) if len(flags) else None,
        "position_bias_rate_ci95": _share_ci(flags, rounds, seed),
        # of the flips, those where the first position won both times (the classic first-position bias)
        "first_position_won_both": int(judged["first_position_won_both"].sum()),
        "pairs": win_tie_loss(judged[["item", "model_a", "model_b", "winner"]], rounds, seed) if len(judged) else {},
    }
