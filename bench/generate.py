"""Generation throughput, three ratios measured in one run:

1. local `transformers` generation of the tiny generator, batched (16) vs one request at a time, in
   generated tokens/s. Both runs answer the same requests with the same per-request seeds, so they write
   the same texts and the ratio measures batching alone. Goal: at least 4x.
2. the http backend at concurrency 32 against a loopback server answering after 200 ms, in requests/s,
   vs the ideal 32 / 0.2 = 160 requests/s. Goal: at least 80%.
3. the http backend over 3 loopback endpoints vs 1 (each answering after 100 ms, 8 requests at a time),
   in requests/s. Goal: at least 2.7x.
4. a rerun of the paper-size grid (43,316 requests over 93 x 151 cells) answered entirely from the cache,
   vs the 30 s goal (and vs the first run through the fake backend that filled the cache).

    python bench/generate.py [--local-requests 32] [--new-tokens 256] [--http-requests 960]
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

GENERATOR = Path("models/generator/tiny_generator")


def local_batching(n: int, new_tokens: int) -> float:
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    params = load_section("generate")
    grid_params = load_section("grid")
    if not GENERATOR.is_dir():
        sys.exit(f"{GENERATOR}: not found (run `dvc repro models` first)")
    planned = plan_requests(build_grid(grid_params, load_bundled()).head(n), params, grid_params, load_bundled(),
                            str(GENERATOR), None)
    requests = [Request(row.prompt, seed=row.request_seed) for row in planned.itertuples()]
    runs = {}
    for batch in (1, 16):
        backend = get_backend(params.model_copy(update={"batch_size": batch, "max_new_tokens": new_tokens,
                                                         "model": str(GENERATOR)}))
        answers = {}
        start = time.perf_counter()
        backend.generate(requests, answers.__setitem__)
        seconds = time.perf_counter() - start
        tokens = sum(a.tokens_out for a in answers.values())
        runs[batch] = (tokens / seconds, [answers[i].text for i in range(n)])
        print(f"local batch {batch:>2}: {tokens} tokens in {seconds:6.1f} s = {tokens / seconds:7.1f} tokens/s")
    same = sum(a == b for a, b in zip(runs[1][1], runs[16][1]))
    ratio = runs[16][0] / runs[1][0]
    print(f"  same text batched and alone: {same}/{n}")
    print(f"  ratio batched/one-at-a-time: {ratio:.2f}x (goal >= 4x)")
    return ratio


def start_servers(count: int, latency: float) -> tuple[list[subprocess.Popen], list[str]]:
    servers = [subprocess.Popen([sys.executable, "-m", "hiwar.loopback", "--port", "0", "--latency", str(latency)],
                                stdout=subprocess.PIPE, text=True) for _ in range(count)]
    return servers, [s.stdout.readline().split()[-1] for s in servers]


def http_rate(urls: list[str], concurrency: int, n: int) -> float:
    """Answered requests/s of the http backend over these endpoints, after a warm-up round."""
    params = load_section("generate")
    template = params.http.endpoints[0]
    http = params.http.model_copy(update={"endpoints": [
        template.model_copy(update={"base_url": url, "concurrency": concurrency}) for url in urls]})
    backend = get_backend(params.model_copy(update={"backend": "http", "model": "loopback", "http": http}))
    requests = [Request(f"طلب رقم {i}", seed=i) for i in range(n)]
    answers = {}
    backend.generate(requests[:concurrency * len(urls)], answers.__setitem__)  # warm-up: connections, imports
    answers.clear()
    start = time.perf_counter()
    backend.generate(requests, answers.__setitem__)
    return sum(a.ok for a in answers.values()) / (time.perf_counter() - start)


def http_throughput(n: int) -> float:
    servers, urls = start_servers(1, latency=0.2)
    try:
        rate = http_rate(urls, 32, n)
    finally:
        for server in servers:
            server.kill()
    print(f"http concurrency 32, 200 ms latency: {n} requests at {rate:.1f} requests/s")
    print(f"  ratio to the ideal 160 requests/s: {rate / 160:.1%} (goal >= 80%)")
    return rate / 160


def endpoint_scaling(n: int) -> float:
    servers, urls = start_servers(3, latency=0.1)
    try:
        one = http_rate(urls[:1], 8, n // 3)
        three = http_rate(urls, 8, n)
    finally:
        for server in servers:
            server.kill()
    print(f"http, 100 ms latency, 8 in flight per endpoint: 1 endpoint {one:.1f} requests/s, "
          f"3 endpoints {three:.1f} requests/s (ideal 80 and 240)")
    print(f"  ratio 3 endpoints / 1: {three / one:.2f}x (goal >= 2.7x)")
    return three / one


class NeverCalled(Backend):
    model_id = "fake"

    def generate(self, requests, on_result):
        if requests:
            raise AssertionError(f"{len(requests)} requests missed the cache")


def cached_paper_grid() -> float:
    seed = load_bundled()
    grid_params = load_section("grid").model_copy(update={"conversations": 43316, "topics": "all",
                                                           "countries": "all"})
    params = load_section("generate").model_copy(update={"backend": "fake"})
    grid = build_grid(grid_params, seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(grid, FakeBackend(params), params, grid_params, seed, ResponseCache(tmp))
        filling = time.perf_counter() - start
        start = time.perf_counter()
        raw, accounting = generate(grid, NeverCalled(params), params, grid_params, seed, ResponseCache(tmp))
        cached = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.jsonl"))
    assert accounting["cached"].all() and len(raw) == 43316
    print(f"paper grid: {len(raw)} requests over {grid['cell_id'].nunique()} cells; cache {size / 1e6:.0f} MB")
    print(f"  first run (fake backend, filling the cache): {filling:.1f} s; rerun from the cache: {cached:.1f} s")
    print(f"  ratio to the 30 s goal: {cached / 30:.2f} (goal < 1)")
    return cached


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local-requests", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--http-requests", type=int, default=960)
    parser.add_argument("--only", choices=["local", "http", "endpoints", "cache"], default=None)
    args = parser.parse_args()
    if args.only in (None, "local"):
        local_batching(args.local_requests, args.new_tokens)
    if args.only in (None, "http"):
        http_throughput(args.http_requests)
    if args.only in (None, "endpoints"):
        endpoint_scaling(args.http_requests)
    if args.only in (None, "cache"):
        cached_paper_grid()


if __name__ == "__main__":
    main()
