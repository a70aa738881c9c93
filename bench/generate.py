"""Generation throughput, four figures measured in one run. Every comparison runs each side once as a
discarded warm-up, then --repeats times interleaved (A B A B ...), and prints median [min, max] of each
rate and of the round-by-round ratio (bench/interleave.py).

1. local `transformers` generation of the tiny generator, batched (16) vs one request at a time, in
   generated tokens/s. Both sides answer the same requests with the same per-request seeds, so they write
   the same texts and the ratio measures batching alone. Goal: at least 4x.
2. the http backend at concurrency 32 against a loopback server answering after 200 ms, in requests/s,
   vs the ideal 32 / 0.2 = 160 requests/s. Goal: at least 80%.
3. endpoint scaling: loopback servers of finite capacity (each works on at most 4 requests at once, 100 ms
   each, and queues the rest: 40 requests/s at most), the http backend with the same 48 requests in flight
   over 3 endpoints (16 each) vs over 1. Added capacity, not more requests in flight, is what can scale
   it. Goal: at least 2.7x.
4. a rerun of the paper-size grid (43,316 requests over 93 x 151 cells) answered entirely from the cache,
   vs the 30 s goal (and vs the first run through the fake backend that filled the cache).

    python bench/generate.py [--repeats 3] [--local-requests 16] [--new-tokens 64] [--http-requests 480]
                             [--only local|http|endpoints|cache]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hiwar.generation.driver import generate, plan_requests  # noqa: E402
from hiwar.generation import Request, get_backend  # noqa: E402
from hiwar.generation.base import Backend  # noqa: E402
from hiwar.generation.cache import ResponseCache  # noqa: E402
from hiwar.generation.fake import FakeBackend  # noqa: E402
from hiwar.generation.grid import build_grid  # noqa: E402
from hiwar.params import load_section  # noqa: E402
from hiwar.bundled import load_bundled  # noqa: E402
from interleave import add_repeats, interleave, parse, spread, summarize  # noqa: E402  (bench/interleave.py)

GENERATOR = Path("models/generator/tiny_generator")


def local_batching(n: int, new_tokens: int, repeats: int) -> float:
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    params = load_section("generate")
    grid_params = load_section("grid")
    if not GENERATOR.is_dir():
        print(f"local generation: skipped, {GENERATOR} not found (run `dvc repro models` first)")
        return float("nan")
    backends = {batch: get_backend(params.model_copy(update={"batch_size": batch, "max_new_tokens": new_tokens,
                                                              "model": str(GENERATOR)})) for batch in (1, 16)}
    bundled = load_bundled()
    planned = plan_requests(build_grid(grid_params, bundled).head(n), params, bundled.conversations, backends[1])
    requests = [Request(row.prompt, seed=row.request_seed) for row in planned.itertuples()]
    texts = {}

    def run(batch: int) -> float:
        answers = {}
        start = time.perf_counter()
        backends[batch].generate(requests, answers.__setitem__)
        seconds = time.perf_counter() - start
        texts[batch] = [answers[i].text for i in range(n)]
        return sum(a.tokens_out for a in answers.values()) / seconds

    print(f"local generation: {n} requests, up to {new_tokens} new tokens, generated tokens/s")
    rates = interleave({"batch 16": lambda: run(16), "batch 1": lambda: run(1)}, repeats)
    ratio = summarize(rates, "tokens/s", [("batch 16", "batch 1")])["batch 16/batch 1"]
    same = sum(a == b for a, b in zip(texts[1], texts[16]))
    print(f"  same text batched and alone: {same}/{n}; goal batched/one-at-a-time >= 4x")
    return ratio


def start_servers(count: int, latency: float, capacity: int | None = None) -> tuple[list[subprocess.Popen], list[str]]:
    extra = ["--capacity", str(capacity)] if capacity else []
    servers = [subprocess.Popen([sys.executable, "-m", "hiwar.loopback", "--port", "0", "--latency", str(latency),
                                 *extra], stdout=subprocess.PIPE, text=True) for _ in range(count)]
    return servers, [s.stdout.readline().split()[-1] for s in servers]


def http_rate(urls: list[str], concurrency: int, n: int) -> float:
    """Answered requests/s of the http backend over these endpoints (the caller warms up)."""
    params = load_section("generate")
    template = params.http.endpoints[0]
    http = params.http.model_copy(update={"endpoints": [
        template.model_copy(update={"base_url": url, "concurrency": concurrency}) for url in urls]})
    backend = get_backend(params.model_copy(update={"backend": "http", "model": "loopback", "http": http}))
    requests = [Request(f"طلب رقم {i}", seed=i) for i in range(n)]
    answers = {}
    start = time.perf_counter()
    backend.generate(requests, answers.__setitem__)
    return sum(a.ok for a in answers.values()) / (time.perf_counter() - start)


def http_throughput(n: int, repeats: int) -> float:
    servers, urls = start_servers(1, latency=0.2)
    try:
        print(f"http backend, concurrency 32, one server answering after 200 ms (no capacity limit): {n} requests")
        rates = interleave({"http": lambda: http_rate(urls, 32, n)}, repeats)["http"]
    finally:
        for server in servers:
            server.kill()
    share = [r / 160 for r in rates]
    print(f"  requests/s: {spread(rates)}; share of the ideal 160 requests/s: {spread(share)} (goal >= 0.8)")
    return sorted(share)[len(share) // 2]


def endpoint_scaling(n: int, repeats: int) -> float:
    capacity, latency, in_flight = 4, 0.1, 48
    servers, urls = start_servers(3, latency=latency, capacity=capacity)
    try:
        print(f"endpoint scaling: servers of capacity {capacity} at {latency * 1000:.0f} ms (at most "
              f"{capacity / latency:.0f} requests/s each), {in_flight} requests in flight on both sides, {n} requests")
        rates = interleave({"3 endpoints": lambda: http_rate(urls, in_flight // 3, n),
                            "1 endpoint": lambda: http_rate(urls[:1], in_flight, n)}, repeats)
    finally:
        for server in servers:
            server.kill()
    ratio = summarize(rates, "requests/s", [("3 endpoints", "1 endpoint")])["3 endpoints/1 endpoint"]
    print(f"  ideal: 1 endpoint {capacity / latency:.0f}, 3 endpoints {3 * capacity / latency:.0f} requests/s; "
          "goal ratio >= 2.7x")
    return ratio


class NeverCalled(Backend):
    model_id = "fake"

    def generate(self, requests, on_result):
        if requests:
            raise AssertionError(f"{len(requests)} requests missed the cache")


def cached_paper_grid(repeats: int) -> float:
    seed = load_bundled()
    grid_params = load_section("grid").model_copy(update={"conversations": 43316, "topics": "all",
                                                           "countries": "all"})
    params = load_section("generate").model_copy(update={"backend": "fake"})
    grid = build_grid(grid_params, seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(grid, FakeBackend(params), params, grid_params, seed, ResponseCache(tmp))
        filling = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.jsonl"))
        print(f"paper grid: {len(grid)} requests over {grid['cell_id'].nunique()} cells; cache {size / 1e6:.0f} MB; "
              f"first run (fake backend, filling the cache) {filling:.1f} s")

        def rerun() -> float:
            start = time.perf_counter()
            raw, accounting = generate(grid, NeverCalled(params), params, grid_params, seed, ResponseCache(tmp))
            assert accounting["cached"].all() and len(raw) == 43316
            return time.perf_counter() - start

        seconds = interleave({"rerun from the cache (s)": rerun}, repeats)["rerun from the cache (s)"]
    print(f"  rerun from the cache: {spread(seconds)} s (goal < 30 s)")
    return sorted(seconds)[len(seconds) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeats(parser)
    parser.add_argument("--local-requests", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--http-requests", type=int, default=480)
    parser.add_argument("--only", choices=["local", "http", "endpoints", "cache"], default=None)
    args = parse(parser)
    if args.only in (None, "local"):
        local_batching(args.local_requests, args.new_tokens, args.repeats)
    if args.only in (None, "http"):
        http_throughput(args.http_requests, args.repeats)
    if args.only in (None, "endpoints"):
        endpoint_scaling(args.http_requests, args.repeats)
    if args.only in (None, "cache"):
        cached_paper_grid(args.repeats)


if __name__ == "__main__":
    main()
