"""Top-up rounds at paper scale: 43,316 conversations over 93 topics x 151 countries (14,043 cells), answered
by a scripted fake backend with a rejection rate per topic, through the real code: generation (cache and
accounting, hiwar.generation.driver), cleaning (hiwar.cleaning, language identification off: the scripted
texts are Arabic or English), and the top-up rounds (hiwar.topup). Prints cells at quota before and after, the
extra requests and tokens per round, and the requests an ideal would spend that knows every cell's rate in
advance (sum over the short cells it can fill of deficit / rate: the expected requests of asking each cell
until it has its quota, nothing wasted on cells that never pass).

Scripted rates: a quarter of the topics lose 40% of their answers to cleaning, a quarter 20%, half 5%;
1% of the cells (by a hash of topic and country) lose every answer. A kept answer is three exchanges drawn by
the request's seed from the bundled conversations (so that dedup finds few duplicates); a rejected one is
English prose (`unparseable`).

    python bench/topup.py [--conversations 43316] [--quota 3] [--budget 0.25 0.5] [--max-rounds 4]
                          [--max-per-cell 6] [--prior-weight 2 6] [--repeats 1]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from hiwar.bundled import load_bundled
from hiwar.cleaning import clean
from hiwar.generation.base import Result
from hiwar.generation.cache import ResponseCache
from hiwar.generation.driver import generate
from hiwar.generation.fake import FakeBackend
from hiwar.generation.grid import build_grid
from hiwar.generation.prompts import format_dialogue
from hiwar.params import load_section
from hiwar.params.clean import CleanParams
from hiwar.params.generate import GenerateParams
from hiwar.params.grid import GridParams
from hiwar.params.topup import TopupParams
from hiwar.topup.accounts import cell_table, summary
from hiwar.topup.rounds import run_rounds

PROSE = "This answer is plain English prose and not a dialogue, so cleaning rejects it."
TOPIC = re.compile(r"عن (.+?): ")
COUNTRY = re.compile(r"تدور المحادثة في (.+?)\.")


def topic_rates(topics: list[str]) -> dict[str, float]:
    """Rejection rate per topic: a quarter 40%, a quarter 20%, half 5% (in the bundled topics' order)."""
    return {t: (0.4, 0.2, 0.05, 0.05)[i % 4] for i, t in enumerate(topics)}


def hopeless(topic_ar: str, country_ar: str) -> bool:
    return int(hashlib.sha256(f"{topic_ar}|{country_ar}".encode()).hexdigest()[:8], 16) % 100 == 0


class Scripted(FakeBackend):
    def __init__(self, params, conversations, rejection: dict[str, float]):
        super().__init__(params, conversations)
        self.rejection = rejection
        self.exchanges = [m["messages"][i:i + 2] for m in conversations for i in range(0, len(m["messages"]) - 1, 2)
                          if [x["role"] for x in m["messages"][i:i + 2]] == ["user", "assistant"]]

    def generate(self, requests, on_result):
        for index, request in enumerate(requests):
            rng = np.random.default_rng(request.seed)
            topic, country = TOPIC.search(request.prompt).group(1), COUNTRY.search(request.prompt).group(1)
            if hopeless(topic, country) or rng.random() < self.rejection[topic]:
                text = PROSE
            else:
                picked = rng.choice(len(self.exchanges), size=3, replace=False)
                text = format_dialogue([m for i in picked for m in self.exchanges[i]])
            on_result(index, Result(text=text, finish_reason="stop", tokens_in=len(request.prompt) // 4,
                                    tokens_out=len(text) // 4))


def ideal(cells: pd.DataFrame, rate: pd.Series, quota: int, spent: int) -> tuple[int, float, int]:
    """(cells an oracle can bring to quota, the expected requests it needs for all of them, how many it brings
    to quota with `spent` requests): deficit / rate per short cell whose true keep rate is above 0, the
    cheapest cells first."""
    short = cells[cells["first_kept"] < quota]
    p = rate.reindex(short.index)
    cost = ((quota - short["first_kept"]) / p)[p > 0].sort_values()
    return int(len(cost)), float(cost.sum()), int((cost.cumsum() <= spent).sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=43316)
    parser.add_argument("--quota", type=int, default=3)
    parser.add_argument("--budget", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--max-rounds", type=int, default=4)
    parser.add_argument("--max-per-cell", type=int, default=6)
    parser.add_argument("--prior-weight", type=float, nargs="+", default=[None],
                        help="topup.prior_weight values to compare (default: params.yaml's)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    bundled = load_bundled()
    grid_params = GridParams.model_validate(load_section("grid").model_dump() | {
        "conversations": args.conversations, "topics": "all", "countries": "all"})
    grid = build_grid(grid_params, bundled)
    topics_ar = dict(zip(bundled.topics["name_ar"], bundled.topics.index))
    rejection = {ar: r for ar, r in zip(topics_ar, topic_rates(list(topics_ar.values())).values())}
    workdir = tempfile.mkdtemp(prefix="hiwar-topup-bench-")
    generate_params = GenerateParams.model_validate(load_section("generate").model_dump() | {
        "backend": "fake", "template": "tiny", "few_shot": 0, "cache_dir": f"{workdir}/cache"})
    clean_params = CleanParams.model_validate(load_section("clean").model_dump() | {"language_id": False})
    backend = Scripted(generate_params, bundled.conversations, rejection)
    print(f"settings: {args.conversations} conversations, {grid['cell_id'].nunique()} cells, quota {args.quota}, "
          f"budgets {args.budget}, max_rounds {args.max_rounds}, max_per_cell {args.max_per_cell}; rejection per "
          "topic 40% / 20% / 5% (a quarter / a quarter / half), 1% of cells always; language_id off", flush=True)
    start = time.perf_counter()
    raw, _ = generate(grid, backend, generate_params, bundled.conversations, ResponseCache(generate_params.cache_dir))
    kept, rejected, metrics = clean(raw, clean_params)
    print(f"first round: {len(raw)} requests, kept {len(kept)} ({metrics['first_reasons']}), "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    first = grid.drop_duplicates("cell_id").set_index("cell_id")
    true_rate = pd.Series([0.0 if hopeless(t, c) else 1 - rejection[t] for t, c in
                           zip(first["topic_ar"], first["country_ar"])], index=first.index)
    for budget, prior in [(b, w) for b in args.budget for w in args.prior_weight]:
        params = TopupParams.model_validate(load_section("topup").model_dump() | {
            "quota": args.quota, "budget": budget, "max_rounds": args.max_rounds, "max_per_cell": args.max_per_cell}
            | ({"prior_weight": prior} if prior is not None else {}))
        seconds = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            rounds = run_rounds(grid, kept, rejected, backend, generate_params, params, clean_params,
                                bundled.conversations, ResponseCache(generate_params.cache_dir))
            seconds.append(time.perf_counter() - t0)
        cells = cell_table(rounds, rejected, params.quota).set_index("cell_id")
        figures = summary(rounds, cells.reset_index(), params, len(grid))
        can, ideal_requests, same_spend = ideal(cells, true_rate, args.quota, figures["extra_requests"])
        print(f"\nbudget {budget} ({figures['budget_requests']} requests), prior_weight {params.prior_weight:g}: cells at quota "
              f"{figures['cells_at_quota']['before']} -> {figures['cells_at_quota']['after']} of {figures['cells']} "
              f"(an oracle can reach {figures['cells_at_quota']['before'] + can}); with a kept conversation "
              f"{figures['cells_with_kept']['before']} -> {figures['cells_with_kept']['after']}; stopped: "
              f"{figures['stopped']}; top-up time median {statistics.median(seconds):.1f} s "
              f"[{min(seconds):.1f}, {max(seconds):.1f}] over {len(seconds)} run(s)")
        for r in figures["rounds"]:
            print(f"  round {r['round']}: {r['cells_asked']} cells asked, {r['requests']} requests, tokens "
                  f"{r['tokens_in']} in / {r['tokens_out']} out, kept {r['kept']}, cells short after "
                  f"{r['cells_short_after']}, given up {r['cells_given_up']}")
        print(f"  extra requests {figures['extra_requests']} ({figures['extra_share']:.1%} of the first round); an "
              f"oracle knowing the rates needs {ideal_requests:.0f} expected requests for all {can} fillable short "
              f"cells, and with the {figures['extra_requests']} requests spent here brings {same_spend} to quota (top-up: "
              f"{figures['cells_at_quota']['after'] - figures['cells_at_quota']['before']}); short after: "
              f"{figures['shortfall']['cells']} ({figures['shortfall']['why']})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
