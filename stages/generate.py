"""Stage `generate`: render each grid row's prompt, answer it from the response cache or the configured
backend, and write one raw row per grid row. Fails, writing no output, when too many requests got no answer
(every answer received is cached by then, so a rerun sends only what is missing)."""

import time

from hiwar.errors import HiwarError
from hiwar.generation.driver import check_failure_rate, failure_table, generate, summarize
from hiwar.generation import get_backend
from hiwar.generation.cache import ResponseCache
from hiwar.generation.grid import COLUMNS, TEXT_COLUMNS
from hiwar.io import read_parquet, write_json, write_jsonl, write_parquet, write_run_facts
from hiwar.params import load_section
from hiwar.bundled import load_bundled
from hiwar.stage import run_stage

FAILURES = "logs/generate-failures.jsonl"


def main():
    params = load_section("generate")
    grid = read_parquet("data/grid.parquet", COLUMNS + TEXT_COLUMNS)
    cache = ResponseCache(params.cache_dir)
    backend = get_backend(params)
    start = time.perf_counter()
    raw, accounting = generate(grid, backend, params, load_bundled().conversations, cache)
    metrics, facts = summarize(raw, accounting, time.perf_counter() - start, backend.endpoint_stats())
    write_run_facts("generate", facts)
    write_jsonl(FAILURES, failure_table(raw).to_dict("records"))
    message = check_failure_rate(raw, params.max_failure_rate)
    if message:
        raise HiwarError(f"{message} Each failed request with its last error: {FAILURES}")
    write_parquet("data/raw/generations.parquet", raw)
    write_json("metrics/generate.json", metrics)


if __name__ == "__main__":
    run_stage(main)
