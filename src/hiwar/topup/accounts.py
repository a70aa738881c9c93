"""Accounting of the top-up rounds: every extra request counted per round (requests, failures, tokens, kept,
rejected by first reason), every cell's before and after, and the cells still short with what kept them so."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from hiwar.generation.driver import RAW_COLUMNS
from hiwar.generation.grid import COLUMNS as GRID_COLUMNS
from hiwar.io import ParquetSink, atomic_path

RAW = GRID_COLUMNS + RAW_COLUMNS + ["round"]

# Why a cell is still short: its estimated keep rate fell below topup.min_keep_rate (given up), the budget ran
# out, the rounds ran out, or top-up is off.
WHY = {"given_up": "keep_rate_below_min", "budget_spent": "budget_spent", "rounds_spent": "rounds_spent",
       "off": "topup_off", "quota_reached": "rounds_spent", "nothing_to_ask": "keep_rate_below_min"}
CELL_COLUMNS = ["cell_id", "topic", "country", "first_requests", "first_kept", "topup_requests", "topup_failed",
                "topup_kept", "requests", "kept", "rounds", "keep_rate", "status", "why", "reasons"]


def round_figures(round_no: int, raw: pd.DataFrame, rejected: list[dict], kept: int,
                  short_before: int, cells_asked: int, given_up: int, short_after: int) -> dict:
    """One round's figures for metrics: the same whether its answers came from the backend or the cache (how
    many were sent is a run fact, logged apart)."""
    return {"round": round_no, "cells_short_before": short_before, "cells_asked": cells_asked,
            "cells_given_up": given_up, "requests": int(len(raw)),
            "failed": int(raw["finish_reason"].eq("error").sum()),
            "tokens_in": int(raw["tokens_in"].sum()), "tokens_out": int(raw["tokens_out"].sum()),
            "kept": kept, "rejected": len(rejected),
            "first_reasons": dict(sorted(Counter(r["reasons"][0] for r in rejected).items())),
            "cells_short_after": short_after}


def _reasons(rows: pd.DataFrame) -> pd.Series:
    """Per cell, its rejected rows' first reasons, most common first: "truncated:3; bad_alternation:1"."""
    firsts = rows.assign(reason=[list(r)[0] if len(r) else "" for r in rows["reasons"]])
    counts = firsts.groupby(["cell_id", "reason"]).size().reset_index(name="n")
    counts = counts.sort_values(["cell_id", "n", "reason"], ascending=[True, False, True])
    return counts.groupby("cell_id").apply(lambda g: "; ".join(f"{r}:{n}" for r, n in zip(g["reason"], g["n"])),
                                           include_groups=False)


def cell_table(rounds, first_rejected: pd.DataFrame, quota: int) -> pd.DataFrame:
    """Every cell of the grid, in grid order: first round and top-up requests and kept, status (at_quota or
    short), why it is short and the first reasons of all its rejected rows."""
    cells = rounds.cells.copy()
    topup = pd.DataFrame(rounds.rejected, columns=["cell_id", "reasons"])
    failed = topup.loc[[list(r)[:1] == ["generation_failed"] for r in topup["reasons"]], "cell_id"].value_counts()
    cells["topup_requests"] = cells["requests"] - cells["first_requests"]
    cells["topup_failed"] = failed.reindex(cells.index, fill_value=0)
    cells["topup_kept"] = cells["kept"] - cells["first_kept"]
    cells["status"] = ["at_quota" if k >= quota else "short" for k in cells["kept"]]
    short = cells["status"].eq("short")
    cells["why"] = ""
    cells.loc[short, "why"] = WHY[rounds.stopped]
    cells.loc[short & cells["given_up"], "why"] = WHY["given_up"]
    every = pd.concat([first_rejected[["cell_id", "reasons"]], topup], ignore_index=True)
    cells["reasons"] = _reasons(every).reindex(cells.index, fill_value="") if len(every) else ""
    return cells.reset_index()[CELL_COLUMNS]


def summary(rounds, cells: pd.DataFrame, params, first_requests: int) -> dict:
    """metrics/topup.json: the settings, the totals of every round, cells at quota before and after, the
    shortfall in brief (the cells themselves are listed in the shortfall file), and each round's figures."""
    quota = params.quota
    total = {k: sum(r[k] for r in rounds.rounds) for k in ("requests", "failed", "tokens_in", "tokens_out",
                                                           "kept", "rejected")}
    short = cells[cells["status"].eq("short")]
    why = short["why"].value_counts().sort_index()
    reasons = Counter()
    for text in short["reasons"]:
        for part in filter(None, text.split("; ")):
            name, n = part.rsplit(":", 1)
            reasons[name] += int(n)
    return {
        "status": "on" if quota > 0 and params.max_rounds > 0 else "off",
        "quota": quota, "max_rounds": params.max_rounds, "budget": params.budget,
        "first_round_requests": first_requests, "budget_requests": rounds.budget,
        "rounds_run": len(rounds.rounds), "stopped": rounds.stopped,
        "extra_requests": total["requests"], "extra_share": round(total["requests"] / max(first_requests, 1), 4),
        **{k: v for k, v in total.items() if k != "requests"},
        "cells": int(len(cells)),
        "cells_at_quota": {"before": int((cells["first_kept"] >= quota).sum()),
                           "after": int((cells["kept"] >= quota).sum())},
        "cells_with_kept": {"before": int((cells["first_kept"] > 0).sum()), "after": int((cells["kept"] > 0).sum())},
        "kept_conversations": {"before": int(cells["first_kept"].sum()), "after": int(cells["kept"].sum())},
        "shortfall": {"cells": int(len(short)), "missing_conversations": int((quota - short["kept"]).sum()),
                      "why": {str(k): int(v) for k, v in why.items()},
                      "first_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))},
        "rounds": rounds.rounds,
    }


def write_outputs(rounds, cells: pd.DataFrame, out: str | Path, shortfall: str | Path, raw_schema, kept_schema,
                  rejected_schema) -> None:
    """The stage's files: raw, kept and rejected rows of every round (each with its `round`), every cell, and
    the short cells (CSV)."""
    out = Path(out)
    raw = pd.concat(rounds.raw, ignore_index=True) if rounds.raw else pd.DataFrame(columns=raw_schema.names)
    for name, rows, schema in (("raw", raw[raw_schema.names].to_dict("records"), raw_schema),
                               ("kept", rounds.kept, kept_schema), ("rejected", rounds.rejected, rejected_schema)):
        with ParquetSink(out / f"{name}.parquet", schema) as sink:
            sink.write([{c: r.get(c) for c in schema.names} for r in rows])
    with atomic_path(out / "cells.csv") as tmp:
        cells.to_csv(tmp, index=False)
    with atomic_path(shortfall) as tmp:
        cells[cells["status"].eq("short")].to_csv(tmp, index=False)


def schemas(kept_schema, rejected_schema):
    """Raw, kept and rejected schemas of the top-up files: the clean stage's kept and rejected columns (so that
    split reads both alike) and the generate stage's raw columns, each with the row's `round`."""
    import pyarrow as pa

    ints = {"sample_index", "exchanges", "tokens_in", "tokens_out", "round"}
    raw = pa.schema([pa.field(c, pa.int64() if c in ints else pa.string()) for c in RAW])
    number = pa.field("round", pa.int64())
    return raw, kept_schema.append(number), rejected_schema.append(number)
