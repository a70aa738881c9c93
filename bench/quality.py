"""The quality stage's work at paper scale: 43,316 kept conversations, in under 2 minutes on 2 cores.

Builds a realistic synthetic dataset from the bundled hand-written conversations: every conversation is
2-5 exchanges drawn from different bundled conversations, placed in a topic x country cell of the full grid
(93 topics x 151 countries), half of them naming their country in the opening turn, 3% opening with a
question another conversation also asks; a third as many conversations rejected; an 80/10/10 split.
Then runs `hiwar.quality.run.assess` (exactly what stages/quality.py runs, minus file writes) with the
params.yaml quality section and the project's encoder, once to warm up (discarded) and --repeats times.
Prints wall and CPU seconds per part: median [min, max]; the baseline is the 120 s budget.

    python bench/quality.py                 # 43,316 conversations, 3 timed runs
    taskset -c 0,1 python bench/quality.py  # pinned to 2 cores
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpy as np
import pandas as pd

from hiwar.bundled import load_bundled
from hiwar.encoder import embed
from hiwar.params import load_section
from hiwar.quality.fidelity import load_forms
from hiwar.quality.run import assess

PAPER = 43_316
BUDGET = 120.0


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    bundled = load_bundled()
    pairs = [(c["messages"][i], c["messages"][i + 1]) for c in bundled.conversations
             for i in range(0, len(c["messages"]) - 1, 2)]
    topics, countries = list(bundled.topics["topic_id"]), list(bundled.countries["iso2"])
    names = dict(zip(bundled.countries["iso2"], bundled.countries["name_ar"]))
    rows = []
    for i in range(n + n // 3):
        topic, country = topics[rng.integers(len(topics))], countries[rng.integers(len(countries))]
        messages = [dict(m) for k in rng.integers(len(pairs), size=int(rng.integers(2, 6))) for m in pairs[k]]
        if rng.random() < 0.03 and rows:
            messages[0] = dict(rows[rng.integers(len(rows))]["messages"][0])
        elif rng.random() < 0.5:
            messages[0]["content"] = f"أعيش في {names[country]}، {messages[0]['content']}"
        rows.append({"conversation_id": f"b{i:06d}", "topic": topic, "country": country,
                     "generator": "models/generator/tiny_generator", "messages": messages})
    frame = pd.DataFrame(rows)
    kept, rejected = frame.iloc[:n].reset_index(drop=True), frame.iloc[n:].assign(reasons=[["near_duplicate"]] * (len(frame) - n))
    order = rng.permutation(n)
    splits = {"train": kept.iloc[order[: int(0.8 * n)]], "test": kept.iloc[order[int(0.9 * n):]]}
    return kept, rejected, splits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=PAPER)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embed-sample", type=int, default=None, help="Override quality.embed_sample.")
    args = parser.parse_args()
    params = load_section("quality")
    if args.embed_sample:
        params = params.model_copy(update={"embed_sample": args.embed_sample})
    kept, rejected, splits = synthetic(args.conversations)
    bundled = load_bundled()
    forms = load_forms(countries=list(bundled.countries["iso2"]))
    print(f"{len(kept)} conversations, {len(rejected)} rejected, {sum(len(m) for m in kept['messages'])} turns; "
          f"encoder {params.encoder}, embed_sample {params.embed_sample} x {params.embed_chars} chars, self-BLEU "
          f"samples {params.self_bleu_sample}/{params.self_bleu_group_sample}; {len(os.sched_getaffinity(0))} cores")
    runs = []
    for run in range(args.repeats + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        result = assess(kept, rejected, splits, bundled.topics, forms, params, partial(embed, encoder=params.encoder))
        seconds = {**result.seconds, "total": time.perf_counter() - wall, "total_cpu": time.process_time() - cpu}
        print(f"run {run}{' (warm-up, discarded)' if run == 0 else ''}: total {seconds['total']:.1f} s "
              f"(process CPU, all threads: {seconds['total_cpu']:.1f} s); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        if run:
            runs.append(seconds)
    print("\npart: median [min, max] seconds")
    for part in runs[0]:
        values = [r[part] for r in runs]
        print(f"  {part:24s} {np.median(values):7.2f} [{min(values):.2f}, {max(values):.2f}]")
    for kind in ("total", "total_cpu"):
        value = float(np.median([r[kind] for r in runs]))
        print(f"{'wall' if kind == 'total' else 'CPU'} / budget ({BUDGET:.0f} s): {value / BUDGET:.2f} -> "
              f"{'within' if value <= BUDGET else 'OVER'} budget")
    print("(on a shared machine the wall time includes waiting for other processes; the CPU time is what the "
          "stage needs of 2 cores)")


if __name__ == "__main__":
    main()
