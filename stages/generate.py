"""Stage `generate`: render each grid row's prompt, answer it from the response cache or the configured
backend, and write one raw row per grid row. Fails, writing no output, when too many requests got no answer
(every answer received is cached by then, so a rerun sends only what is missing)."""

import time

import click

from hiwar.bundled import load_bundled
from hiwar.errors import HiwarError
from hiwar.generation import get_backend
from hiwar.generation.cache import ResponseCache
from hiwar.generation.asking import check_failure_rate
from hiwar.generation.driver import failure_table, generate, summarize
from hiwar.generation.grid import COLUMNS, TEXT_COLUMNS
from hiwar.io import read_parquet, run_log_path, write_json, write_jsonl, write_parquet, write_run_facts
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--grid", "the prompt grid (Parquet)")
@path_option("--bundled", "folder of the bundled conversations (few-shot examples)")
@path_option("--raw", "raw generations to write, one row per grid row (Parquet)")
@path_option("--metrics", "request and answer counts to write (JSON)")
def main(grid, bundled, raw, metrics):
    params = load_section("generate")
    rows = read_parquet(grid, COLUMNS + TEXT_COLUMNS)
    cache = ResponseCache(params.cache_dir)
    backend = get_backend(params)
    start = time.perf_counter()
    out, accounting = generate(rows, backend, params, load_bundled(bundled).conversations, cache)
    counts, facts = summarize(out, accounting, time.perf_counter() - start, backend.endpoint_stats())
    write_run_facts("generate", facts)
    failures = run_log_path("generate-failures.jsonl")
    write_jsonl(failures, failure_table(out).to_dict("records"))
    message = check_failure_rate(out, params.max_failure_rate)
    if message:
        raise HiwarError(f"{message} Each failed request with its last error: {failures}")
    write_parquet(raw, out)
    write_json(metrics, counts)


if __name__ == "__main__":
    run_stage(main)
