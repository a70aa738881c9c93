"""Running the top-up rounds: allocate, ask (cache and backend, as the generate stage does), clean (the clean
stage's Cleaner, seeded with everything it kept, so a duplicate of a kept conversation is rejected: first in
input order wins), count, repeat."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from hiwar import engine as engines
from hiwar.cleaning import Cleaner
from hiwar.errors import HiwarError
from hiwar.generation import Backend
from hiwar.generation.asking import check_failure_rate
from hiwar.generation.cache import ResponseCache
from hiwar.generation.driver import generate
from hiwar.generation.grid import stable_id
from hiwar.params.clean import CleanParams
from hiwar.params.generate import GenerateParams
from hiwar.params.topup import TopupParams
from hiwar.topup.accounts import round_figures
from hiwar.topup.allocate import allocate, keep_rates


@dataclass
class Rounds:
    """Every top-up row (raw, then kept or rejected, each with its `round`), the cells, and per-round figures."""
    raw: list[pd.DataFrame] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    cells: pd.DataFrame | None = None
    rounds: list[dict] = field(default_factory=list)
    budget: int = 0
    sent: int = 0  # requests this run sent to the backend (run facts, not metrics: a rerun sends none)
    cache_hits: int = 0
    stopped: str = "off"  # why the rounds ended: off, quota_reached, budget_spent, rounds_spent, nothing_to_ask


def first_round(grid: pd.DataFrame, kept: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """Per cell, in grid order: topic, country, requests, kept, the next free sample index, and what a new
    request of the cell is rendered from (its first row)."""
    if len(kept) + len(rejected) != len(grid):
        raise HiwarError(f"top-up: the clean stage's outputs hold {len(kept) + len(rejected)} rows but the grid "
                         f"{len(grid)} (an input is older than the grid; run `dvc repro clean`)")
    first = grid.sort_values("sample_index", kind="stable").drop_duplicates("cell_id")
    cells = grid[["cell_id"]].drop_duplicates().merge(first, on="cell_id", how="left").set_index("cell_id")
    cells["requests"] = grid["cell_id"].value_counts()
    cells["kept"] = kept["cell_id"].value_counts().reindex(cells.index, fill_value=0)
    cells["next_index"] = grid.groupby("cell_id")["sample_index"].max() + 1
    cells["rounds"] = 0
    cells["first_requests"], cells["first_kept"] = cells["requests"], cells["kept"]
    return cells


def new_requests(cells: pd.DataFrame, asked: pd.Series, round_no: int, personas: list[tuple[str, str]],
                 vary_persona: bool) -> pd.DataFrame:
    """Grid-shaped rows for this round's requests: the cell's next sample indexes; the persona rotates through
    the grid's personas by sample index when `vary_persona` (recorded in the row's `persona`)."""
    rows = []
    position = {p: i for i, (p, _) in enumerate(personas)}
    for cell, n in asked[asked > 0].items():
        c = cells.loc[cell]
        for sample_index in range(int(c["next_index"]), int(c["next_index"]) + int(n)):
            persona, persona_ar = c["persona"], c["persona_ar"]
            if vary_persona and personas:
                persona, persona_ar = personas[(position.get(persona, 0) + sample_index) % len(personas)]
            rows.append({"conversation_id": stable_id(c["conversation_id"], "topup", sample_index), "cell_id": cell,
                         "topic": c["topic"], "country": c["country"], "sample_index": sample_index,
                         "exchanges": int(c["exchanges"]), "persona": persona, "topic_ar": c["topic_ar"],
                         "topic_description": c["topic_description"], "country_ar": c["country_ar"],
                         "persona_ar": persona_ar, "round": round_no})
    return pd.DataFrame(rows)


def run_rounds(grid: pd.DataFrame, kept: pd.DataFrame, rejected: pd.DataFrame, backend: Backend,
               generate_params: GenerateParams, params: TopupParams, clean_params: CleanParams,
               examples_from: list[dict], cache: ResponseCache, engine: engines.Engine | None = None) -> Rounds:
    """All top-up rounds. `kept` and `rejected` are the clean stage's outputs (cell_id, conversation_id,
    messages; cell_id, reasons); `grid` the grid file, with its wording columns."""
    engine = engine or engines.current()
    cells = first_round(grid, kept, rejected)
    out = Rounds(cells=cells, budget=math.floor(params.budget * len(grid) + 1e-9))
    if params.quota > 0 and params.max_rounds > 0:
        _loop(out, grid, kept, backend, generate_params, params, clean_params, examples_from, cache, engine)
    cells["keep_rate"] = keep_rates(cells, params.prior_weight).round(4)
    cells["given_up"] = (cells["kept"] < params.quota) & (cells["keep_rate"] < params.min_keep_rate)
    return out


def _loop(out: Rounds, grid, kept, backend, generate_params, params, clean_params, examples_from, cache, engine):
    cells = out.cells
    personas = sorted(set(zip(grid["persona"], grid["persona_ar"])))
    cleaner = Cleaner(clean_params)
    cleaner.remember(kept.to_dict("records"))
    spent, out.stopped = 0, "rounds_spent"
    for round_no in range(1, params.max_rounds + 1):
        if (cells["kept"] >= params.quota).all():
            out.stopped = "quota_reached"
            break
        if spent >= out.budget:
            out.stopped = "budget_spent"
            break
        asked, given_up = allocate(cells, params.quota, out.budget - spent, params.max_per_cell,
                                   params.min_keep_rate, params.prior_weight)
        if asked.sum() == 0:
            out.stopped = "nothing_to_ask"  # every short cell given up
            break
        rows = new_requests(cells, asked, round_no, personas, params.vary_persona)
        raw, accounting = generate(rows, backend, generate_params, examples_from, cache)
        raw["round"] = round_no
        out.sent += int((~accounting["cached"]).sum())
        out.cache_hits += int(accounting["cached"].sum())
        message = check_failure_rate(raw, generate_params.max_failure_rate, stage="topup")
        if message:
            raise HiwarError(f"{message} (round {round_no}; generate.max_failure_rate applies to top-up requests)")
        round_kept, round_rejected = [], []
        for batch_kept, batch_rejected in cleaner.run([raw.to_dict("records")], engine):
            round_kept += [r | {"round": round_no} for r in batch_kept]
            round_rejected += [r | {"round": round_no} for r in batch_rejected]
        short_before = int((cells["kept"] < params.quota).sum())
        cells["requests"] = cells["requests"].add(asked, fill_value=0).astype("int64")
        cells["kept"] = cells["kept"].add(pd.Series([r["cell_id"] for r in round_kept], dtype=object)
                                          .value_counts(), fill_value=0).astype("int64")
        cells["next_index"] += asked
        cells["rounds"] += (asked > 0).astype("int64")
        spent += int(asked.sum())
        out.raw.append(raw)
        out.kept += round_kept
        out.rejected += round_rejected
        out.rounds.append(round_figures(round_no, raw, round_rejected, len(round_kept), short_before,
                                        int((asked > 0).sum()), int(given_up.sum()),
                                        int((cells["kept"] < params.quota).sum())))
    else:
        if (cells["kept"] >= params.quota).all():
            out.stopped = "quota_reached"
        elif spent >= out.budget:
            out.stopped = "budget_spent"
