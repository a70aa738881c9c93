"""Top-up rounds (hiwar.topup): cells below quota after cleaning get new requests until they reach it, the
rounds run out or the budget is spent; the cells left short are listed with their reasons."""

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from hiwar.cleaning import clean
from hiwar.generation.base import Result
from hiwar.generation.cache import ResponseCache
from hiwar.generation.driver import generate
from hiwar.generation.fake import FakeBackend
from hiwar.generation.grid import build_grid
from hiwar.generation.prompts import format_dialogue
from hiwar.params.clean import CleanParams
from hiwar.params.generate import GenerateParams
from hiwar.params.grid import GridParams
from hiwar.params.topup import TopupParams
from hiwar.topup.accounts import cell_table, summary
from hiwar.topup.allocate import allocate
from hiwar.topup.rounds import run_rounds

NEVER, SOMETIMES = "cooking", "nutrition"  # always rejected; rejected for two seeds in three; travel: always kept
GIVEN: dict[int, int] = {}  # seed -> which bundled conversation, shared by every Scripted backend of the session
PROSE = "This answer is plain English prose and not a dialogue at all, so cleaning rejects it."


class Scripted(FakeBackend):
    """Answers by the topic the prompt names: a distinct bundled dialogue, or English prose that cleaning
    rejects (always for NEVER, for two seeds in three for SOMETIMES)."""

    def __init__(self, params, conversations, descriptions: dict[str, str]):
        super().__init__(params, conversations)
        self.descriptions = descriptions

    def generate(self, requests, on_result):
        self.calls.append(list(requests))
        for index, request in enumerate(requests):
            topic = next(t for t, text in self.descriptions.items() if text in request.prompt)
            if topic == NEVER or (topic == SOMETIMES and request.seed % 3):
                text = PROSE
            else:  # a new bundled conversation for every new request, so that dedup has nothing to find
                number = GIVEN.setdefault(request.seed, len(GIVEN))
                text = format_dialogue(self.conversations[number % len(self.conversations)]["messages"])
            on_result(index, Result(text=text, finish_reason="stop", tokens_in=10, tokens_out=len(text)))


@pytest.fixture
def setting(bundled, params_data, tmp_path):
    grid_params = GridParams.model_validate(dict(params_data["grid"], conversations=12,
                                                 topics=["travel", NEVER, SOMETIMES], countries=["JO", "EG"]))
    generate_params = GenerateParams.model_validate(dict(params_data["generate"], backend="fake",
                                                         cache_dir=str(tmp_path / "cache")))
    grid = build_grid(grid_params, bundled)
    descriptions = bundled.topics.loc[["travel", NEVER, SOMETIMES], "description_ar"].to_dict()
    clean_params = CleanParams.model_validate(dict(params_data["clean"], language_id=False))
    raw, _ = generate(grid, Scripted(generate_params, bundled.conversations, descriptions), generate_params,
                      bundled.conversations, ResponseCache(generate_params.cache_dir))
    kept, rejected, _ = clean(raw, clean_params)
    return dict(grid=grid, kept=kept, rejected=rejected, generate_params=generate_params, clean_params=clean_params,
                descriptions=descriptions, bundled=bundled)


def top_up(s, **changes):
    params = TopupParams.model_validate(dict(quota=3, max_rounds=4, budget=2.0, max_per_cell=2, min_keep_rate=0.03,
                                             prior_weight=2.0, vary_persona=True) | changes)
    backend = Scripted(s["generate_params"], s["bundled"].conversations, s["descriptions"])
    rounds = run_rounds(s["grid"], s["kept"], s["rejected"], backend, s["generate_params"], params,
                        s["clean_params"], s["bundled"].conversations, ResponseCache(s["generate_params"].cache_dir))
    cells = cell_table(rounds, s["rejected"], params.quota)
    return rounds, cells.set_index("cell_id"), summary(rounds, cells, params, len(s["grid"])), backend


def test_cells_reach_quota_where_they_can_the_rest_are_listed_with_reasons_within_budget(setting):
    rounds, cells, figures, backend = top_up(setting)
    topic = cells["topic"]
    # the first round leaves every cell short of 3 (2 requests per cell)
    assert (cells["first_kept"] < 3).all() and (cells["first_requests"] == 2).all()
    # reached where it can: every always-kept and every sometimes-kept cell is at quota
    assert cells.loc[topic != NEVER, "status"].eq("at_quota").all()
    assert (cells.loc[topic == SOMETIMES, "topup_kept"] > 0).all()
    # the rest listed, with the reason that kept them short and why top-up stopped asking
    short = cells[cells["status"].eq("short")]
    assert set(short["topic"]) == {NEVER} and len(short) == 2 and short["kept"].eq(0).all()
    assert short["reasons"].str.startswith("unparseable:").all()
    assert short["why"].isin({"keep_rate_below_min", "budget_spent", "rounds_spent"}).all()
    assert figures["shortfall"]["cells"] == 2 and figures["shortfall"]["missing_conversations"] == 6
    assert "unparseable" in figures["shortfall"]["first_reasons"]
    # inside the budget: 2 x 12 first-round requests = 24 extra at most, all rounds together
    assert figures["budget_requests"] == 24 and len(figures["rounds"]) == 2
    assert figures["extra_requests"] == sum(len(c) for c in backend.calls) <= 24
    assert figures["extra_requests"] == sum(r["requests"] for r in figures["rounds"]) == int(cells["topup_requests"].sum())
    # every extra request accounted: kept + rejected per round, rejected rows carry round and reasons
    for r in figures["rounds"]:
        assert r["kept"] + r["rejected"] == r["requests"]
    assert len(rounds.kept) + len(rounds.rejected) == figures["extra_requests"]
    assert all(row["round"] >= 1 and row["reasons"] for row in rounds.rejected)
    assert figures["cells_at_quota"] == {"before": 0, "after": 4}
    # budgets that bind: in the second round (1.5 x 12 = 18), in the first (0.5 x 12 = 6); never one more
    for budget, spent in ((1.5, 18), (0.5, 6)):
        rounds, cells, figures, backend = top_up(setting, budget=budget)
        assert figures["extra_requests"] == sum(len(r) for r in rounds.raw) == spent
        assert figures["stopped"] == "budget_spent" and cells["topup_requests"].sum() == spent
        assert cells.loc[cells["topic"].ne(NEVER) & cells["status"].eq("short"), "why"].eq("budget_spent").all()


def test_new_requests_take_new_sample_indexes_and_a_rerun_sends_none(setting):
    rounds, cells, figures, backend = top_up(setting)
    raw = pd.concat(rounds.raw)
    assert raw["sample_index"].min() == 2  # 0 and 1 were the first round's
    assert not raw.duplicated(["cell_id", "sample_index"]).any()
    assert raw["request_key"].is_unique and not set(raw["request_key"]) & set(setting["grid"]["conversation_id"])
    assert raw["persona"].nunique() > 1  # vary_persona: the persona each request was asked with, per row
    again, cells_again, figures_again, backend_again = top_up(setting)
    assert backend_again.calls == [] or sum(len(c) for c in backend_again.calls) == 0
    assert again.sent == 0 and again.cache_hits == figures["extra_requests"]
    assert figures_again == figures and cells_again.equals(cells)


def test_a_top_up_duplicate_of_a_conversation_clean_kept_is_rejected(setting):
    class Repeats(Scripted):  # every answer is the first bundled conversation
        def generate(self, requests, on_result):
            self.calls.append(list(requests))
            text = format_dialogue(self.conversations[0]["messages"])
            for index, _ in enumerate(requests):
                on_result(index, Result(text=text, finish_reason="stop", tokens_in=1, tokens_out=1))

    s = setting
    kept = pd.concat([s["kept"].iloc[:1].assign(messages=[s["bundled"].conversations[0]["messages"]]),
                      s["kept"].iloc[1:]])
    params = TopupParams.model_validate(dict(quota=3, max_rounds=1, budget=0.5, max_per_cell=1, min_keep_rate=0.1,
                                             prior_weight=2.0, vary_persona=False))
    rounds = run_rounds(s["grid"], kept, s["rejected"], Repeats(s["generate_params"], s["bundled"].conversations,
                                                                 s["descriptions"]), s["generate_params"], params,
                        s["clean_params"], s["bundled"].conversations,
                        ResponseCache(s["generate_params"].cache_dir + "-repeats"))
    assert rounds.kept == []
    assert {r["reasons"][0] for r in rounds.rejected} == {"exact_duplicate"}
    assert {r["duplicate_of"] for r in rounds.rejected} == {kept["conversation_id"].iloc[0]}


def test_quota_zero_is_off_and_asks_nothing(setting):
    rounds, cells, figures, backend = top_up(setting, quota=0)
    assert backend.calls == [] and figures["status"] == "off" and figures["extra_requests"] == 0


def test_allocation_fills_empty_cells_first_and_never_passes_the_budget():
    cells = pd.DataFrame({"topic": ["a", "a", "b", "b"], "requests": [2, 2, 2, 2], "kept": [0, 1, 2, 0]},
                         index=["a:1", "a:2", "b:1", "b:2"])
    asked, given_up = allocate(cells, quota=2, budget=3, max_per_cell=10, min_keep_rate=0.05, prior_weight=2.0)
    assert asked.sum() == 3 and asked["b:1"] == 0  # at quota: nothing
    assert asked["a:1"] >= 1 and asked["b:2"] >= 1  # both empty cells get their first conversation's requests
    asked, _ = allocate(cells, quota=2, budget=100, max_per_cell=3, min_keep_rate=0.05, prior_weight=2.0)
    assert asked.max() <= 3 and asked["b:1"] == 0
    hopeless = pd.DataFrame({"topic": ["a"], "requests": [40], "kept": [0]}, index=["a:1"])
    asked, given_up = allocate(hopeless, quota=1, budget=100, max_per_cell=5, min_keep_rate=0.1, prior_weight=2.0)
    assert asked.sum() == 0 and given_up["a:1"]


def test_changing_the_quota_reruns_only_top_up_and_what_follows():
    config = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    stages = {name: s.get("do", s) for name, s in config["stages"].items()}
    paths = next(v["paths"] for v in config["vars"] if "paths" in v)

    def fill(text):
        for key, value in paths.items():
            text = text.replace("${paths.%s}" % key, value)
        return text

    def outs(stage):
        return {fill(next(iter(o)) if isinstance(o, dict) else o) for k in ("outs", "metrics", "plots")
                for o in stage.get(k, [])}

    reading = {n for n, s in stages.items() if any(p == "topup" or str(p).startswith("topup.") for p in s.get("params", []))}
    assert reading == {"topup"}
    rerun, grew = set(reading), True
    while grew:  # every stage that depends on an output of a stage that reruns
        made = set().union(*(outs(stages[n]) for n in rerun))
        more = {n for n, s in stages.items() if any(fill(str(d)).rstrip("/") in made or
                                                    any(fill(str(d)).startswith(m + "/") for m in made)
                                                    for d in s.get("deps", []))}
        grew = not more <= rerun
        rerun |= more
    assert {"models", "grid", "generate", "clean", "judge", "rating"}.isdisjoint(rerun)
    assert {"topup", "split", "quality", "card", "evaluate"} <= rerun


def test_the_report_and_the_card_state_the_shortfall_plainly(setting):
    from types import SimpleNamespace

    from hiwar.cards.findings import topup as card_line
    from hiwar.evaluation.report import topup_section

    _, _, figures, _ = top_up(setting)
    text = "\n".join(topup_section(figures))
    assert "**Shortfall: 2 cells are still below quota** (6 conversations missing)" in text
    assert "unparseable" in text and "Cells at quota: 0 -> 4 of 6" in text
    assert text.count("\n| ") == 2 + len(figures["rounds"])  # header, separator, one row per round
    line = card_line(SimpleNamespace(topup=figures))
    assert "2 cells are still below quota (6 conversations missing" in line and "unparseable" in line
    off = top_up(setting, quota=0)[2]
    assert "Off (topup.quota 0" in "\n".join(topup_section(off)) and "No top-up rounds" in card_line(SimpleNamespace(topup=off))
    assert topup_section({}) == [] and card_line(SimpleNamespace(topup=None)) == ""
