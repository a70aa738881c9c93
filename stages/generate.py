"""Stage `generate`: render each grid row's prompt and generate a dialogue with the configured backend."""

import time

from hiwar.generate import generate, summarize
from hiwar.generation import get_backend
from hiwar.grid import COLUMNS
from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.seed import load_seed
from hiwar.stage import run_stage


def main():
    params = load_section("generate")
    grid_params = load_section("grid")
    grid = read_parquet("data/grid.parquet", COLUMNS)
    backend = get_backend(params)
    start = time.perf_counter()
    raw = generate(grid, backend, params, grid_params, load_seed())
    write_parquet("data/raw/generations.parquet", raw)
    write_json("metrics/generate.json", summarize(raw, time.perf_counter() - start))


if __name__ == "__main__":
    run_stage(main)
