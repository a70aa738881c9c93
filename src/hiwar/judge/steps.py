"""The two judge stages' work, with the files already read: `score` (after clean) and `compare` (after
evaluate). Each returns what the stage writes; nothing here touches the disk except the response cache."""

from __future__ import annotations

import time
from functools import partial

import pandas as pd

from hiwar.errors import HiwarError
from hiwar.generation.asking import check_failure_rate
from hiwar.judge import agreement, pairwise, scoring
from hiwar.judge.engine import Answer, failure_frame, judge_all, open_judge
from hiwar.judge.parse import parse_scores, parse_verdict
from hiwar.judge.rubric import Prompts, check_criteria
from hiwar.params.judge import JudgeParams

NOT_JUDGED = {"status": "not judged"}
NO_VERDICTS = pd.DataFrame(columns=["item", "status"])  # data/judge/pairwise.parquet when nothing was compared


def _check(answers: list[Answer], params: JudgeParams) -> None:
    message = check_failure_rate(failure_frame(answers), params.max_failure_rate, stage="judge")
    if message:
        # A malformed answer is cached like any other, so a plain rerun reaches the same verdict: say what helps.
        raise HiwarError(message.replace(
            "Answers so far are cached: rerun to send only the failed requests.",
            "Every answer is cached, malformed ones too: a rerun sends only requests that got no answer; raise "
            "judge.parse_retries to ask malformed ones again, or use a judge that follows the format."))


def score(params: JudgeParams, conversations: pd.DataFrame, raw_text: dict[str, str], topics, countries) -> dict:
    """{scores, kept, rejected, metrics, per_topic, per_country, facts} for the `judge` stage."""
    check_criteria(params.criteria, "judge.criteria")
    if params.backend == "none":
        scores = scoring.not_judged(conversations, params.criteria)
        kept, rejected = scoring.gate(conversations, scores, None, raw_text)
        return dict(scores=scores, kept=kept, rejected=rejected, metrics=NOT_JUDGED, per_topic=[], per_country=[],
                    facts=NOT_JUDGED)
    started = time.perf_counter()
    backend, cache = open_judge(params)
    prompts = Prompts(params.template, params.language)
    tasks = scoring.conversation_tasks(conversations, topics, countries, prompts, params.criteria)
    answers, facts = judge_all(tasks, partial(parse_scores, criteria=params.criteria), backend, cache, params,
                               desc="judge")
    _check(answers, params)
    scores = scoring.score_table(conversations, answers, params.criteria)
    kept, rejected = scoring.gate(conversations, scores, params.min_score, raw_text)
    metrics = scoring.score_metrics(scores, params.criteria, kept, rejected, params.min_score, backend.model_id,
                                    facts["off_schema_answers"])
    facts |= {"wall_seconds": round(time.perf_counter() - started, 2), "per_endpoint": backend.endpoint_stats()}
    return dict(scores=scores, kept=kept, rejected=rejected, metrics=metrics,
                per_topic=scoring.per_group(scores, params.criteria, "topic"),
                per_country=scoring.per_group(scores, params.criteria, "country"), facts=facts)


def compare(params: JudgeParams, replies: pd.DataFrame | None, key: pd.DataFrame | None,
            humans: dict[str, pd.DataFrame], rating_criteria: list[str], seed: int) -> dict:
    """{metrics, verdicts (one row per pairwise item), facts} for the `judge-compare` stage: pairwise comparison of the evaluated models
    and the judge as one more rater on the human-rating items (each only when its inputs exist)."""
    if params.backend == "none":
        return dict(metrics=NOT_JUDGED, verdicts=NO_VERDICTS, facts=NOT_JUDGED)
    check_criteria(params.criteria, "judge.criteria")
    check_criteria(rating_criteria, "rating.criteria")
    started = time.perf_counter()
    backend, cache = open_judge(params)
    prompts = Prompts(params.template, params.language)
    metrics, verdicts, facts, answers = {"status": "judged", "judge": backend.model_id}, NO_VERDICTS, {}, []
    if params.pairwise and replies is not None:
        items = pairwise.pair_items(replies)
        got, facts["pairwise"] = judge_all(pairwise.pairwise_tasks(items, prompts, params.criteria), parse_verdict,
                                           backend, cache, params, desc="judge pairwise")
        answers += got
        verdicts = pairwise.combine(items, got)
        metrics["pairwise"] = pairwise.pairwise_metrics(verdicts, params.bootstrap, seed)
    else:
        metrics["pairwise"] = "not compared (judge.pairwise is off or there are no evaluation replies)"
    if params.rate_items and key is not None and replies is not None:
        got, facts["rating_items"] = judge_all(agreement.rating_tasks(key, replies, prompts, rating_criteria),
                                               partial(parse_scores, criteria=rating_criteria), backend, cache,
                                               params, desc="judge rating items")
        answers += got
        judged = agreement.judge_ratings(got)
        metrics["rating_items"] = {"items": len(got), "judged": sum(a.status == "judged" for a in got)}
        metrics["agreement"] = (agreement.judge_vs_humans(judged, humans, rating_criteria) if humans
                                else "not rated (no filled human sheets in ratings/filled)")
    else:
        metrics["agreement"] = "not compared (judge.rate_items is off or there is no ratings/key.csv)"
    _check(answers, params)
    metrics["off_schema_answers"] = sum(part.get("off_schema_answers", 0) for part in facts.values())
    facts |= {"wall_seconds": round(time.perf_counter() - started, 2), "per_endpoint": backend.endpoint_stats()}
    return dict(metrics=metrics, verdicts=verdicts, facts=facts)
