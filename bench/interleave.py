"""Repeated, interleaved measurement for the benches: a single run is not evidence.

Each side of a comparison runs once as a discarded warm-up, then `repeats` times in turn (A B A B ...), so
drift on a shared machine (other jobs, CPU frequency, caches) falls on both sides alike. Each side's rate
and the ratio of each round's pair are summarised as median [min, max].
"""

from __future__ import annotations

import argparse
import statistics
from typing import Callable


def add_repeats(parser: argparse.ArgumentParser, threads: bool = False) -> None:
    """The options every bench shares: --repeats (at least 3, checked by `parse`) and, for torch benches,
    --threads (the same on every side)."""
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds per side, after a warm-up")
    if threads:
        parser.add_argument("--threads", type=int, default=1, help="torch threads, the same on every side "
                            "(1: on a shared machine more threads spin-wait)")


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats: at least 3 (one run is not evidence)")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    return args


def interleave(sides: dict[str, Callable[[], float]], repeats: int = 3, warmup: bool = True) -> dict[str, list[float]]:
    """Run every side `repeats` times, round by round, after one discarded warm-up round; returns the rates."""
    if warmup:
        for name, run in sides.items():
            print(f"  warm-up {name}: {run():.2f} (discarded)", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeats):
        for name, run in sides.items():
            rates[name].append(run())
            print(f"  round {round_ + 1} {name}: {rates[name][-1]:.2f}", flush=True)
    return rates


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.2f} [{min(values):,.2f}, {max(values):,.2f}]"


def summarize(rates: dict[str, list[float]], unit: str, ratios: list[tuple[str, str]]) -> dict[str, float]:
    """Print each side's median [range] and each ratio's, the ratio taken round by round; returns the
    median ratios by 'a/b'."""
    for name, values in rates.items():
        print(f"  {name}: {spread(values)} {unit} (median [min, max] of {len(values)})")
    medians = {}
    for a, b in ratios:
        each = [x / y for x, y in zip(rates[a], rates[b])]
        print(f"  ratio {a} / {b}: {spread(each)}")
        medians[f"{a}/{b}"] = statistics.median(each)
    return medians
