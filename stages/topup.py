"""Stage `topup`: grid cells that kept fewer conversations than `topup.quota` after cleaning get new requests,
round by round (cache and backend as in `generate`, the clean stage's rules and dedup), within a budget.
Writes the rounds' raw, kept and rejected rows, every cell's before and after, and the cells still short."""

import time

import click
import pyarrow.parquet as pq

from hiwar.bundled import load_bundled
from hiwar.generation import get_backend
from hiwar.generation.cache import ResponseCache
from hiwar.generation.grid import COLUMNS, TEXT_COLUMNS
from hiwar.io import read_parquet, write_json, write_run_facts
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage
from hiwar.topup.accounts import cell_table, schemas, summary, write_outputs
from hiwar.topup.rounds import run_rounds


@click.command()
@path_option("--grid", "the prompt grid (Parquet)")
@path_option("--bundled", "folder of the bundled conversations (few-shot examples)")
@path_option("--kept", "the clean stage's kept conversations (Parquet)")
@path_option("--rejected", "the clean stage's rejected rows (Parquet)")
@path_option("--out", "folder to write: raw, kept and rejected rows of the rounds, cells.csv")
@path_option("--shortfall", "the cells still below quota, with rounds spent and reasons, to write (CSV)")
@path_option("--metrics", "extra requests, tokens and kept per round, cells at quota before and after (JSON)")
def main(grid, bundled, kept, rejected, out, shortfall, metrics):
    params, generate_params = load_section("topup"), load_section("generate")
    rows = read_parquet(grid, COLUMNS + TEXT_COLUMNS)
    first_kept = read_parquet(kept, ["conversation_id", "cell_id", "messages"])
    first_rejected = read_parquet(rejected, ["cell_id", "reasons"])
    backend = get_backend(generate_params)
    start = time.perf_counter()
    rounds = run_rounds(rows, first_kept, first_rejected, backend, generate_params, params, load_section("clean"),
                        load_bundled(bundled).conversations, ResponseCache(generate_params.cache_dir))
    cells = cell_table(rounds, first_rejected, params.quota)
    figures = summary(rounds, cells, params, len(rows))
    write_run_facts("topup", {"sent": rounds.sent, "cache_hits": rounds.cache_hits,
                              "wall_seconds": round(time.perf_counter() - start, 2)})
    write_outputs(rounds, cells, out, shortfall, *schemas(pq.read_schema(kept), pq.read_schema(rejected)))
    write_json(metrics, figures)
    print(f"topup: {figures['extra_requests']} extra requests in {figures['rounds_run']} round(s), kept "
          f"{figures['kept']}; cells at quota {figures['cells_at_quota']['before']} -> "
          f"{figures['cells_at_quota']['after']} of {figures['cells']}; short {figures['shortfall']['cells']} "
          f"({figures['stopped']})")


if __name__ == "__main__":
    run_stage(main)
