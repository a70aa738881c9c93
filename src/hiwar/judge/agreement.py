"""The judge as one more rater: it scores the blinded rating items (ratings/key.csv, R0001...) on the
human sheets' criteria, and its agreement with each person is set beside the people's agreement with each
other, with the same statistics (quadratic Cohen's kappa per pair, Krippendorff's alpha, interval)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from hiwar.agreement import cohen_kappa_quadratic, krippendorff_alpha_interval
from hiwar.errors import HiwarError
from hiwar.judge.engine import Answer, Task
from hiwar.judge.rubric import Prompts, score_schema

JUDGE = "judge"


def rating_tasks(key: pd.DataFrame, replies: pd.DataFrame, prompts: Prompts, criteria: list[str]) -> list[Task]:
    """One request per rating item: the reply the key points at (model, kind, turn), with its history."""
    lookup = {(m, k, int(t)): (h, r) for m, k, t, h, r in
              zip(replies["model"], replies["kind"], replies["turn"], replies["history"], replies["reply"])}
    tasks = []
    for row in key.itertuples():
        found = lookup.get((row.model, row.kind, int(row.turn)))
        if found is None:
            raise HiwarError(f"ratings/key.csv: item {row.item} ({row.model} {row.kind}, turn {row.turn}) is not in "
                             "data/eval/replies.parquet (expected a key exported from these replies: `hiwar rate export`)")
        tasks.append(Task(row.item, prompts.reply(list(found[0]), found[1], criteria), score_schema(criteria)))
    return tasks


def judge_ratings(answers: list[Answer]) -> pd.DataFrame:
    """The judge's scores as a rater's long rows (item, criterion, score); failed items are missing ratings."""
    rows = [{"item": a.id, "criterion": c, "score": s} for a in answers if a.value for c, s in a.value.items()]
    return pd.DataFrame(rows, columns=["item", "criterion", "score"])


def _kappa(table: pd.DataFrame, a: str, b: str) -> dict | None:
    both = table[[a, b]].dropna()
    if len(both) < 2:
        return None
    return {"items": int(len(both)),
            "cohen_kappa_quadratic": round(cohen_kappa_quadratic(both[a].astype(int), both[b].astype(int)), 4)}


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return round(float(np.mean(values)), 4) if values else None


def judge_vs_humans(judge: pd.DataFrame, humans: dict[str, pd.DataFrame], criteria: list[str]) -> dict:
    """Per criterion: human-human kappas and alpha, judge-human kappas and alpha (judge with that one
    person), alpha over everyone; then the plain answer: does the judge agree with people as well as people
    agree with each other (mean quadratic kappa over criteria and pairs)?"""
    long = pd.concat([r.assign(rater=name) for name, r in {**humans, JUDGE: judge}.items()], ignore_index=True)
    people = sorted(humans)
    result = {"raters": people, "criteria": {}}
    hh_all, jh_all = [], []
    for criterion in criteria:
        table = long[long["criterion"] == criterion].pivot_table(index="item", columns="rater", values="score")
        table = table.reindex(columns=[*people, JUDGE])
        hh = {f"{a}~{b}": k for a, b in itertools.combinations(people, 2) if (k := _kappa(table, a, b))}
        jh = {}
        for person in people:
            k = _kappa(table, JUDGE, person)
            if k:
                jh[person] = k | {"krippendorff_alpha_interval": round(krippendorff_alpha_interval(table[[JUDGE, person]]), 4)}
        result["criteria"][criterion] = {
            "human_human": hh,
            "human_human_alpha": round(krippendorff_alpha_interval(table[people]), 4) if len(people) > 1 else None,
            "judge_human": jh,
            "all_raters_alpha": round(krippendorff_alpha_interval(table), 4),
        }
        hh_all += [v["cohen_kappa_quadratic"] for v in hh.values()]
        jh_all += [v["cohen_kappa_quadratic"] for v in jh.values()]
    human_mean, judge_mean = _mean(hh_all), _mean(jh_all)
    result["mean_kappa_human_human"], result["mean_kappa_judge_human"] = human_mean, judge_mean
    result["verdict"] = verdict(judge_mean, human_mean, len(people))
    return result


def verdict(judge_mean: float | None, human_mean: float | None, people: int) -> str:
    if judge_mean is None:
        return "no judge-human agreement could be computed (too few items rated by both)"
    if people < 2 or human_mean is None:
        return (f"mean quadratic kappa judge-human {judge_mean:.3f}; with only one human rater there is no "
                "human-human agreement to compare it with")
    if judge_mean >= human_mean:
        return (f"the judge agrees with people at least as well as people agree with each other "
                f"(mean quadratic kappa judge-human {judge_mean:.3f}, human-human {human_mean:.3f})")
    return (f"the judge agrees with people less well than people agree with each other "
            f"(mean quadratic kappa judge-human {judge_mean:.3f}, human-human {human_mean:.3f})")
