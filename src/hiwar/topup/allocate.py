"""The allocation rule of a top-up round: which short cells get how many new requests.

A cell's keep rate is estimated from what survived cleaning so far, shrunk towards its topic's rate, and a
topic's towards the whole grid's (`prior_weight` pseudo-requests each: a cell has seen 1 to 4 requests, too
few to judge alone). A cell missing d conversations at an estimated keep rate p is asked d / p requests,
rounded to the nearest (see `expected`), at most `max_per_cell` in one round. A cell whose estimate is below `min_keep_rate` is given up: asking it
again would spend the budget where it is least likely to buy anything.

The budget is dealt out one missing conversation at a time: first the requests that buy every short cell its
first missing conversation, then those for their second, and so on, so an empty cell is paid for before a
thin one gets more. When what is left cannot pay for a whole level, it goes one request at a time to each of
that level's cells in turn (in grid order, which goes round-robin over topics), so one cell with a low rate
cannot take it all.
"""

from __future__ import annotations

import math

import pandas as pd


def keep_rates(cells: pd.DataFrame, prior_weight: float) -> pd.Series:
    """Estimated keep rate per cell (`cells`: topic, requests, kept, indexed by cell)."""
    overall = cells["kept"].sum() / max(cells["requests"].sum(), 1)
    topics = cells.groupby("topic")[["requests", "kept"]].sum()
    topic_rate = (topics["kept"] + prior_weight * overall) / (topics["requests"] + prior_weight)
    prior = cells["topic"].map(topic_rate)
    rate = (cells["kept"] + prior_weight * prior) / (cells["requests"] + prior_weight)
    return rate.fillna(0.0)  # a cell never asked, with no prior: nothing known, nothing spent on it


def expected(k: int, rate: float) -> int:
    """Requests for k kept conversations at `rate`: k / rate rounded to the nearest (at least 1 for k >= 1).
    Not rounded up: at rate 0.95, ceil(1 / 0.95) = 2 would ask twice for nearly every conversation; a cell
    left one short by the rounding gets it in the next round."""
    return 0 if k <= 0 else max(1, math.floor(k / rate + 0.5))


def allocate(cells: pd.DataFrame, quota: int, budget: int, max_per_cell: int, min_keep_rate: float,
             prior_weight: float) -> tuple[pd.Series, pd.Series]:
    """(requests per cell for this round, the short cells given up), both indexed like `cells`. The requests
    add up to at most `budget`."""
    rate = keep_rates(cells, prior_weight)
    deficit = (quota - cells["kept"]).clip(lower=0)
    given_up = (deficit > 0) & (rate < min_keep_rate)
    asked = pd.Series(0, index=cells.index, dtype="int64")
    open_cells = [c for c in cells.index if deficit[c] > 0 and not given_up[c]]
    left = budget
    for k in range(1, int(deficit.max()) + 1 if len(cells) else 1):
        # requests that buy each cell's k-th missing conversation at its rate, beyond those for the first k - 1
        steps = {c: min(expected(k, rate[c]) - expected(k - 1, rate[c]), max_per_cell - int(asked[c]))
                 for c in open_cells if deficit[c] >= k}
        steps = {c: n for c, n in steps.items() if n > 0}
        if sum(steps.values()) <= left:
            for cell, n in steps.items():
                asked[cell] += n
            left -= sum(steps.values())
            continue
        while left > 0:  # not enough for all: one request at a time to each cell in turn
            for cell in steps:
                if left > 0 and steps[cell] > 0:
                    asked[cell], steps[cell], left = asked[cell] + 1, steps[cell] - 1, left - 1
        break
    return asked, given_up
