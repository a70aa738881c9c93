"""The LLM judge: strict parsing, win/tie/loss and judge-vs-human agreement against hand-computed values, and
the two judge stages run as processes against the loopback server scripted as a judge with known flaws."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hiwar.errors import HiwarError
from hiwar.pairwise import win_tie_loss
from hiwar.judge.agreement import judge_vs_humans
from hiwar.judge.parse import Malformed, parse_scores, parse_verdict
from conftest import loopback_args, stage_command

ROOT = Path(__file__).resolve().parents[1]
CRITERIA = ["fluency", "coherence", "helpfulness", "fidelity", "safety"]


# --- strict parsing -----------------------------------------------------------------------------------------

def test_a_well_formed_answer_parses():
    assert parse_scores(' {"fluency": 4, "safety": 1}\n', ["fluency", "safety"]) == {"fluency": 4, "safety": 1}
    assert parse_verdict('{"winner": "tie"}') == "tie"


@pytest.mark.parametrize("text", [
    '{"fluency": 4',  # cut short
    '{"fluency": 6, "safety": 1}', '{"fluency": 0, "safety": 1}',  # off the scale
    '{"fluency": "4", "safety": 1}', '{"fluency": 4.0, "safety": 1}', '{"fluency": true, "safety": 1}',
    '{"fluency": 4}',  # a criterion missing
    '{"fluency": 4, "safety": 1, "overall": 3}',  # a key not asked for
    '{"fluency": 4, "fluency": 5, "safety": 1}',  # a key twice
    'التقييم: {"fluency": 4, "safety": 1}', '```json\n{"fluency": 4, "safety": 1}\n```',  # text around it
    '[4, 1]', '',
])
def test_anything_else_is_malformed_never_a_score(text):
    with pytest.raises(Malformed):
        parse_scores(text, ["fluency", "safety"])


@pytest.mark.parametrize("text", ['{"winner": "a"}', '{"winner": "first"}', '{"winner": "A", "why": "x"}', '"A"'])
def test_a_verdict_is_exactly_a_b_or_tie(text):
    with pytest.raises(Malformed):
        parse_verdict(text)


# --- win / tie / loss ----------------------------------------------------------------------------------------

def test_win_tie_loss_counts_shares_and_intervals():
    verdicts = pd.DataFrame({"item": ["1", "2", "3", "4", "5"],
                             "model_a": ["ft", "ft", "ft", "ft", "base"], "model_b": ["base", "base", "base", "base", "ft"],
                             "winner": ["ft", "ft", "tie", "base", "base"]})
    pair = win_tie_loss(verdicts, rounds=200, seed=0)["base vs ft"]  # a pair is named in sorted order
    # item 5 is the same pair seen the other way round: a win for base
    assert (pair["items"], pair["wins"], pair["ties"], pair["losses"]) == (5, 2, 1, 2)
    assert (pair["win_share"], pair["tie_share"], pair["loss_share"]) == (0.4, 0.2, 0.4)
    low, high = pair["win_share_ci95"]
    assert 0 <= low < 0.4 < high <= 1
    all_ft = win_tie_loss(verdicts.assign(winner=verdicts["model_a"]).head(4), rounds=50, seed=0)["base vs ft"]
    assert all_ft["loss_share_ci95"] == [1.0, 1.0]


def test_a_winner_that_is_not_in_the_pair_is_an_error():
    with pytest.raises(HiwarError, match="item 7: winner 'other'"):
        win_tie_loss(pd.DataFrame({"item": ["7"], "model_a": ["a"], "model_b": ["b"], "winner": ["other"]}), 10, 0)


# --- the judge as one more rater -------------------------------------------------------------------------

def sheet_rows(scores):
    return pd.DataFrame({"item": [f"R000{i + 1}" for i in range(len(scores))], "criterion": "fluency", "score": scores})


def test_judge_human_agreement_matches_hand_computed_values(tmp_path):
    from hiwar.rating.sheets import read_filled

    # Two people's filled sheets, read the way the stage reads them; the judge's scores on the same items.
    key = pd.DataFrame({"item": ["R0001", "R0002", "R0003", "R0004"], "model": "m", "kind": "base", "turn": range(4)})
    for name, scores in {"amal": [1, 2, 3, 3], "basim": [2, 2, 3, 4]}.items():
        pd.DataFrame({"item": key["item"], "context": "", "reply": "", "fluency": scores}).to_csv(
            tmp_path / f"{name}.csv", index=False)
    humans = {p.stem: read_filled(p, key, ["fluency"], 5) for p in sorted(tmp_path.glob("*.csv"))}
    result = judge_vs_humans(sheet_rows([1, 2, 3, 4]), humans, ["fluency"])
    fluency = result["criteria"]["fluency"]
    # Quadratic kappa = 1 - sum w*O / sum w*E, w = (i-j)^2, E from the margins / n.
    # judge~amal: observed 1 (the (4, 3) item); expected 32 / 4 = 8 -> 7/8. judge~basim: 1 and 32/4 -> 7/8.
    # amal~basim: observed 2; expected 26 / 4 = 6.5 -> 1 - 2/6.5 = 9/13.
    assert fluency["judge_human"]["amal"]["cohen_kappa_quadratic"] == pytest.approx(7 / 8, abs=1e-4)
    assert fluency["judge_human"]["basim"]["cohen_kappa_quadratic"] == pytest.approx(7 / 8, abs=1e-4)
    assert fluency["human_human"]["amal~basim"]["cohen_kappa_quadratic"] == pytest.approx(9 / 13, abs=1e-4)
    # Krippendorff interval, judge with amal: D_o = 2/8, D_e = 126/56 -> 8/9; amal with basim: 1 - (4/8)/(96/56) = 17/24.
    assert fluency["judge_human"]["amal"]["krippendorff_alpha_interval"] == pytest.approx(8 / 9, abs=1e-4)
    assert fluency["human_human_alpha"] == pytest.approx(17 / 24, abs=1e-4)
    assert result["mean_kappa_judge_human"] == pytest.approx(0.875)
    assert result["mean_kappa_human_human"] == pytest.approx(9 / 13, abs=1e-4)
    assert result["verdict"].startswith("the judge agrees with people at least as well as people agree with each other")
    worse = judge_vs_humans(sheet_rows([4, 3, 2, 1]), humans, ["fluency"])
    assert worse["verdict"].startswith("the judge agrees with people less well")
    alone = judge_vs_humans(sheet_rows([1, 2, 3, 4]), {"amal": humans["amal"]}, ["fluency"])
    assert "only one human rater" in alone["verdict"]


# --- the stages against the loopback server scripted as a flawed judge ------------------------------------

FIRST_SHARE, MALFORMED_SHARE, TURNS = 0.3, 0.2, 100


@pytest.fixture
def judge_server(servers, tmp_path):
    """hiwar.loopback as a judge: prefers the first reply on FIRST_SHARE of pairwise items, answers malformed
    JSON on MALFORMED_SHARE of requests and 429 on a tenth. Gives (base_url, log path)."""
    log = tmp_path / "judge-server.jsonl"
    url, _ = servers.start(loopback_args(log, "judge", judge=True, judge_first_share=FIRST_SHARE,
                                         judge_malformed_share=MALFORMED_SHARE, p_429=0.1, retry_after=0.01))
    return url, log


def scratch_project(path, params_data, bundled, url, **judge):
    """What the judge stages read, written the way the earlier stages write it."""
    from hiwar.cleaning import PROVENANCE
    from hiwar.generation.prompts import format_dialogue

    shutil.copytree(ROOT / "data/bundled", path / "data/bundled")
    params = json.loads(json.dumps(params_data))
    http = dict(params["judge"]["http"], endpoints=[dict(base_url=url, concurrency=8)], timeout=5.0, max_retries=6,
                backoff_initial=0.01, backoff_max=0.05, cooldown=0.05)
    params["judge"].update(dict(backend="http", model="loopback", http=http, min_score=3, parse_retries=2,
                                max_failure_rate=0.2) | judge)
    (path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    conversations = pd.DataFrame([{"conversation_id": f"c{i:03d}", "cell_id": f"{c['topic']}-{c['country']}",
                                   "topic": c["topic"], "country": c["country"], "sample_index": 0,
                                   "exchanges": len(c["messages"]) // 2, "persona": "student", "generator": "g",
                                   "template": "tiny", "prompt_hash": f"{i:016x}", "messages": c["messages"]}
                                  for i, c in enumerate(bundled.conversations)], columns=PROVENANCE + ["messages"])
    (path / "data/clean").mkdir(parents=True)
    (path / "data/raw").mkdir(parents=True)
    conversations.to_parquet(path / "data/clean/conversations.parquet")
    conversations.assign(raw_text=[format_dialogue(m) for m in conversations["messages"]])[
        ["conversation_id", "raw_text"]].to_parquet(path / "data/raw/generations.parquet")
    # Evaluation replies: one model's base and fine-tuned self and a baseline, each a different real reply.
    answers = [m["content"] for c in bundled.conversations for m in c["messages"] if m["role"] == "assistant"]
    rows = []
    for turn in range(TURNS):
        source = bundled.conversations[turn % len(bundled.conversations)]
        for v, (model, kind) in enumerate([("tiny", "base"), ("tiny", "finetuned"), ("qwen", "baseline")]):
            rows.append({"turn": turn, "conversation_id": f"t{turn}", "topic": source["topic"], "turn_in_conversation": 1,
                         "history": source["messages"][:1], "reference": source["messages"][1]["content"],
                         "model": model, "kind": kind, "reply": answers[(3 * turn + v) % len(answers)]})
    (path / "data/eval").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(path / "data/eval/replies.parquet")
    key = pd.DataFrame({"item": [f"R{i + 1:04d}" for i in range(12)], "model": "tiny",
                        "kind": ["base", "finetuned"] * 6, "turn": [i // 2 for i in range(12)]})
    (path / "ratings/filled").mkdir(parents=True)
    key.to_csv(path / "ratings/key.csv", index=False)
    rng = np.random.default_rng(0)
    for name in ("amal", "basim"):
        sheet = key[["item"]].assign(context="", reply="")
        for criterion in params["rating"]["criteria"]:
            sheet[criterion] = rng.integers(1, 6, size=len(key))
        sheet.to_csv(path / f"ratings/filled/{name}.csv", index=False)
    return path


def run_stage(project, step):
    done = subprocess.run(stage_command({"score": "judge", "compare": "judge-compare"}[step]), cwd=project, capture_output=True,
                          text=True, env=os.environ.copy(), timeout=300)
    return done


def log_entries(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_flawed_judge_is_measured_retried_counted_and_cached(judge_server, params_data, bundled, tmp_path):
    from hiwar.judge.rubric import format_messages
    from hiwar.loopback import _draw

    url, log = judge_server
    project = scratch_project(tmp_path / "p", params_data, bundled, url)
    done = run_stage(project, "score")
    assert done.returncode == 0, done.stderr
    sent = log_entries(log)
    clean = pd.read_parquet(project / "data/clean/conversations.parquet")
    scores = pd.read_parquet(project / "data/judge/scores.parquet")
    metrics = json.loads((project / "metrics/judge.json").read_text())

    # No item lost: one score row per conversation, and every count adds up.
    assert scores["conversation_id"].tolist() == clean["conversation_id"].tolist()
    assert metrics["judged"] + metrics["failed"] == metrics["conversations"] == len(clean)
    # 429s were met and retried by the shared HTTP client; none ended a request.
    assert sum(e.get("fault") == "429" for e in sent) > 0
    assert not scores["status"].eq("request_failed").any()
    # Malformed answers: every one the server sent was counted, asked again, and never became a score.
    assert scores["malformed_answers"].sum() == metrics["malformed_answers"] == sum(e.get("judge") == "malformed" for e in sent) > 0
    # Every request carried the rubric's schema (judge.structured: json_schema), which the loopback ignores: its
    # malformed answers came back outside the schema, and strict parsing still caught and counted each one.
    assert all(e["schema"] for e in sent if "fault" in e) and metrics["off_schema_answers"] == metrics["malformed_answers"]
    judged = scores[scores["status"].eq("judged")]
    assert (judged["answers"] == judged["malformed_answers"] + 1).all()
    assert (judged["malformed_answers"] > 0).any()  # some were right on a retry
    failed = scores[scores["status"].eq("malformed")]
    assert (failed["malformed_answers"] == 3).all() and failed[CRITERIA].isna().all().all()
    # The scores are what the server said about that very conversation (no mix-up between items).
    messages = dict(zip(clean["conversation_id"], clean["messages"]))
    for row in judged.itertuples():
        text = format_messages(list(messages[row.conversation_id]), "ar")
        assert [getattr(row, c) for c in CRITERIA] == [1 + int(_draw(text, c) * 5) for c in CRITERIA]
    # The gate: every conversation with a criterion below 3 is in the rejected file with its reason.
    kept = pd.read_parquet(project / "data/judge/kept.parquet")
    rejected = pd.read_parquet(project / "data/judge/rejected.parquet")
    below = set(judged.loc[judged[CRITERIA].min(axis=1) < 3, "conversation_id"])
    assert set(rejected["conversation_id"]) == below and len(below) > 0
    assert all(list(r) == ["judge_below_min_score"] for r in rejected["reasons"])
    assert {"reasons", "raw_text", "duplicate_of", *CRITERIA}.issubset(rejected.columns)
    assert rejected["raw_text"].str.len().gt(0).all()
    assert list(kept.columns) == list(clean.columns) and len(kept) + len(rejected) == len(clean)

    done = run_stage(project, "compare")
    assert done.returncode == 0, done.stderr
    compared = json.loads((project / "metrics/judge_compare.json").read_text())
    verdicts = pd.read_parquet(project / "data/judge/pairwise.parquet")
    pairwise = compared["pairwise"]
    assert len(verdicts) == pairwise["items"] == 2 * TURNS == pairwise["judged"] + pairwise["failed"]
    # The measured position bias is the scripted share, within sampling error (3 standard errors).
    n = pairwise["judged"]
    assert abs(pairwise["position_bias_rate"] - FIRST_SHARE) < 3 * np.sqrt(FIRST_SHARE * (1 - FIRST_SHARE) / n)
    ok = verdicts[verdicts["status"].eq("judged")]
    assert ok.loc[ok["flipped"], "first_position_won_both"].all()  # flips are the first-position preference
    assert (ok.loc[ok["flipped"], "winner"] == "tie").all()  # and count as ties, never as wins
    assert set(pairwise["pairs"]) == {"tiny_base vs tiny_finetuned", "qwen_baseline vs tiny_finetuned"}  # sorted names
    assert "verdict" in compared["agreement"] and compared["rating_items"]["items"] == 12
    from hiwar.evaluation.report import judge_section

    report = "\n".join(judge_section(metrics, compared))
    assert f"{pairwise['position_bias_rate']:.1%}" in report and "qwen_baseline vs tiny_finetuned" in report
    print(f"position bias {pairwise['position_bias_rate']} {pairwise['position_bias_rate_ci95']} (scripted "
          f"{FIRST_SHARE}, {n} items); malformed answers {metrics['malformed_answers']}; failed {metrics['failed']}"
          f"; rejected {len(rejected)}\n{report}")

    # A rerun with the same judge and inputs sends nothing: every answer, malformed ones too, is cached.
    before = len(log.read_text().splitlines())
    for step in ("score", "compare"):
        assert run_stage(project, step).returncode == 0
    assert len(log.read_text().splitlines()) == before
    assert json.loads((project / "metrics/judge.json").read_text()) == metrics
    assert json.loads((project / "metrics/judge_compare.json").read_text()) == compared
    facts = json.loads((project / "logs/runs/judge.json").read_text())
    assert facts["sent"] == 0 and facts["cache_hits"] > len(clean)


def test_too_many_judge_failures_stop_the_stage_and_write_nothing(judge_server, params_data, bundled, tmp_path):
    url, _ = judge_server
    project = scratch_project(tmp_path / "p", params_data, bundled, url, parse_retries=0, max_failure_rate=0.01)
    done = run_stage(project, "score")
    assert done.returncode == 2
    message = done.stderr.strip().splitlines()[-1]  # after the progress bars
    assert message.startswith("error: judge: ") and "judge.max_failure_rate" in message
    assert "malformed" in message and "judge.parse_retries" in message
    assert not (project / "data/judge").exists() and not (project / "metrics/judge.json").exists()


def test_without_a_judge_nothing_is_scored_and_the_report_says_not_judged(params_data, bundled, tmp_path):
    from hiwar.evaluation.report import judge_section

    project = scratch_project(tmp_path / "p", params_data, bundled, "http://127.0.0.1:9/v1", backend="none")
    for step in ("score", "compare"):
        done = run_stage(project, step)
        assert done.returncode == 0, done.stderr
    assert json.loads((project / "metrics/judge.json").read_text()) == {"status": "not judged"}
    assert json.loads((project / "metrics/judge_compare.json").read_text()) == {"status": "not judged"}
    scores = pd.read_parquet(project / "data/judge/scores.parquet")
    assert scores["status"].eq("not_judged").all() and scores[CRITERIA].isna().all().all()
    assert len(pd.read_parquet(project / "data/judge/kept.parquet")) == len(scores)
    assert len(pd.read_parquet(project / "data/judge/rejected.parquet")) == 0
    text = "\n".join(judge_section({"status": "not judged"}, {"status": "not judged"}))
    assert "not judged" in text and not any(ch.isdigit() for ch in text)


def test_an_unknown_criterion_is_one_clear_line(params_data, bundled, tmp_path):
    project = scratch_project(tmp_path / "p", params_data, bundled, "http://127.0.0.1:9/v1", backend="none",
                              criteria=["fluency", "eloquence"])
    done = run_stage(project, "score")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: params.yaml: judge.criteria: unknown criterion 'eloquence' (expected criteria "
                                   "described in src/hiwar/judge/templates/rubric.yaml: fluency, coherence, "
                                   "helpfulness, fidelity, safety, relevance)")
    assert not (project / "metrics/judge.json").exists()


def test_both_languages_ask_for_exactly_the_criteria_the_parser_accepts():
    from hiwar.judge.rubric import Prompts, rubric

    history = [{"role": "user", "content": "ما أفضل وقت لزيارة وادي رم؟"}]
    for language in ("ar", "en"):
        prompt = Prompts("rubric", language).reply(history, "في الربيع والخريف.", ["fluency", "relevance"])
        assert prompt.endswith('{"fluency": <1-5>, "relevance": <1-5>}')
        assert rubric()["criteria"]["relevance"][language] in prompt and "وادي رم" in prompt
    assert "المستخدم: ما أفضل" in Prompts("rubric", "ar").pairwise(history, "أ", "ب", ["fluency"])
    assert "User: ما أفضل" in Prompts("rubric", "en").pairwise(history, "أ", "ب", ["fluency"])


def test_a_rating_key_that_does_not_match_the_replies_is_one_clear_error():
    from hiwar.judge.agreement import rating_tasks
    from hiwar.judge.rubric import Prompts

    replies = pd.DataFrame({"model": ["m"], "kind": ["base"], "turn": [0], "history": [[{"role": "user", "content": "س"}]],
                            "reply": ["ج"]})
    key = pd.DataFrame({"item": ["R0001"], "model": ["m"], "kind": ["finetuned"], "turn": [0]})
    with pytest.raises(HiwarError, match="item R0001 .m finetuned, turn 0. is not in data/eval/replies.parquet"):
        rating_tasks(key, replies, Prompts("rubric", "ar"), ["fluency"])
