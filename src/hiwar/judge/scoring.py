"""Dataset scoring: every kept conversation gets one row of scores (or a judge failure with its reason),
and the optional gate (judge.min_score) rejects conversations with any criterion below it.

What the gate feeds: nothing downstream by itself. It writes data/judge/kept.parquet (the clean
conversations that passed, same columns) and data/judge/rejected.parquet (same columns as
data/clean/rejected.parquet plus the scores, reason `judge_below_min_score`); the split keeps reading
data/clean/conversations.parquet unless it is pointed at kept.parquet (docs/judge.md). A conversation the
judge failed on cannot be gated: it is kept, and counted as such.
"""

from __future__ import annotations

import pandas as pd

from hiwar.judge.engine import Answer, Task
from hiwar.judge.rubric import Prompts, score_schema

REASON = "judge_below_min_score"
ID_COLUMNS = ["conversation_id", "topic", "country"]


def conversation_tasks(conversations: pd.DataFrame, topics: pd.DataFrame, countries: pd.DataFrame,
                       prompts: Prompts, criteria: list[str]) -> list[Task]:
    """One request per conversation, naming its topic and country in the prompt's language."""
    name = "name_ar" if prompts.language == "ar" else "name_en"
    schema = score_schema(criteria)
    return [Task(row.conversation_id, prompts.conversation(
                list(row.messages), topics.loc[row.topic, name] if row.topic in topics.index else row.topic,
                countries.loc[row.country, name] if row.country in countries.index else row.country, criteria),
                 schema)
            for row in conversations.itertuples()]


def score_table(conversations: pd.DataFrame, answers: list[Answer], criteria: list[str]) -> pd.DataFrame:
    """One row per conversation: ids, a nullable integer column per criterion, the lowest and the mean score,
    and how the judge got there (status judged | malformed | request_failed | not_judged, error, answers)."""
    rows = []
    for conversation_id, answer in zip(conversations["conversation_id"], answers):
        assert conversation_id == answer.id
        scores = answer.value or {}
        rows.append({**{c: scores.get(c) for c in criteria}, "status": answer.status, "error": answer.error,
                     "answers": answer.asked, "malformed_answers": answer.malformed,
                     "request_key": answer.request_key})
    table = pd.DataFrame(rows, columns=[*criteria, "status", "error", "answers", "malformed_answers", "request_key"])
    for c in criteria:
        table[c] = table[c].astype("Int64")
    table.insert(len(criteria), "min_score", table[criteria].min(axis=1, skipna=False).astype("Int64"))
    table.insert(len(criteria) + 1, "mean_score", table[criteria].astype("Float64").mean(axis=1, skipna=False).round(4))
    return pd.concat([conversations[ID_COLUMNS].reset_index(drop=True), table], axis=1)


def not_judged(conversations: pd.DataFrame, criteria: list[str]) -> pd.DataFrame:
    """The score table when no judge is configured: every conversation, no score."""
    answers = [Answer(cid, status="not_judged") for cid in conversations["conversation_id"]]
    return score_table(conversations, answers, criteria)


def gate(conversations: pd.DataFrame, scores: pd.DataFrame, min_score: int | None,
         raw_text: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept: clean columns, rejected: clean rejected columns plus the scores). raw_text maps a conversation
    id to the generator's raw text, as data/clean/rejected.parquet keeps it."""
    below = scores["min_score"].lt(min_score).fillna(False).to_numpy(bool) if min_score is not None \
        else [False] * len(scores)
    kept = conversations[~pd.Series(below, index=conversations.index)].reset_index(drop=True)
    rejected = conversations[below].reset_index(drop=True)
    rejected = rejected.assign(reasons=[[REASON]] * len(rejected),
                               raw_text=[raw_text.get(c) for c in rejected["conversation_id"]], duplicate_of=None)
    score_columns = [c for c in scores.columns if c not in ID_COLUMNS]
    rejected = rejected.merge(scores[["conversation_id", *score_columns]], on="conversation_id", how="left")
    return kept, rejected


def _distribution(scores: pd.DataFrame, criteria: list[str]) -> dict:
    judged = scores[scores["status"].eq("judged")]
    return {c: {"mean": round(float(judged[c].mean()), 4) if len(judged) else None,
                "counts": {str(s): int(judged[c].eq(s).sum()) for s in range(1, 6)}} for c in criteria}


def score_metrics(scores: pd.DataFrame, criteria: list[str], kept: pd.DataFrame, rejected: pd.DataFrame,
                  min_score: int | None, judge: str, off_schema: int = 0) -> dict:
    """metrics/judge.json: counts that add up (judged + failed == conversations; kept + rejected ==
    conversations) and the score distribution per criterion. Per topic and country: plot files."""
    status = scores["status"].value_counts()
    failed = {k: int(status.get(k, 0)) for k in ("malformed", "request_failed")}
    return {
        "status": "judged", "judge": judge, "criteria": criteria,
        "conversations": int(len(scores)), "judged": int(status.get("judged", 0)),
        "failed": sum(failed.values()), "failures": failed,
        "malformed_answers": int(scores["malformed_answers"].sum()),
        "off_schema_answers": int(off_schema),  # malformed although the schema was sent: the server ignored it
        "scores": _distribution(scores, criteria),
        "gate": {"min_score": min_score, "kept": int(len(kept)), "rejected": int(len(rejected)),
                 "kept_unjudged": int((~scores["status"].eq("judged")).sum()) if min_score is not None else 0},
    }


def per_group(scores: pd.DataFrame, criteria: list[str], column: str) -> list[dict]:
    """Plot rows: mean score per criterion (and conversations judged) for each topic or country."""
    judged = scores[scores["status"].eq("judged")]
    return [{column: value, "conversations": int(len(group)),
             **{c: round(float(group[c].mean()), 4) for c in criteria}, "mean_score": round(float(group["mean_score"].mean()), 4)}
            for value, group in judged.groupby(column)]
