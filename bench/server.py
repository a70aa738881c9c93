"""A CPU user's choice, measured: SmolLM2-135M-Instruct in process (transformers) or behind llama.cpp's server,
and the cost of holding answers to a JSON schema (issues 26 and 32).

    python bench/server.py --only backends     # transformers in process vs llama.cpp at concurrency 1, 4, 8
    python bench/server.py --only structured   # constrained vs free decoding, in process and over the server
    python bench/server.py --only judge        # the judge on a real model, with and without the rubric's schema

Every side answers the same chat prompts with the same decoding (greedy, the same max_new_tokens, the same
threads); rates are generated tokens per second over the whole batch, a discarded warm-up, then --repeats
interleaved rounds, median [min, max]. The server is started here (hiwar.serving) and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from interleave import add_repeats, interleave, parse, summarize  # noqa: E402

from hiwar.bundled import load_bundled  # noqa: E402
from hiwar.generation import Request, get_backend  # noqa: E402
from hiwar.generation.prompts import dialogue_schema  # noqa: E402
from hiwar.judge.rubric import score_schema  # noqa: E402
from hiwar.models_import import import_gguf, smollm2_gguf  # noqa: E402
from hiwar.params import load_section  # noqa: E402
from hiwar.serving import server_command  # noqa: E402

ALIAS = "smollm2"
PROMPTS = ["Write a short dialogue between a traveller and a guide about {}.".format(t) for t in (
    "the old city of Fez", "tea in Morocco", "the Dead Sea", "the souks of Muscat", "dates in Al-Ahsa",
    "Petra at night", "the Nile in Aswan", "coffee in Yemen")]


def serve(threads: int, context: int = 8192):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(server_command(smollm2_gguf(), port=port, context=context, threads=threads, alias=ALIAS),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/models", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama.cpp server did not start")


def backend(kind: str, url: str | None, model_dir: str | None, concurrency: int = 1, structured: str = "none",
            max_new_tokens: int = 96, batch_size: int = 8):
    params = load_section("generate")
    http = params.http.model_copy(update={"endpoints": [params.http.endpoints[0].model_copy(
        update={"base_url": url or "http://127.0.0.1:1/v1", "concurrency": concurrency})], "timeout": 600.0})
    return get_backend(params.model_copy(update={
        "backend": kind, "model": ALIAS if kind == "http" else model_dir, "revision": None, "temperature": 0.0,
        "max_new_tokens": max_new_tokens, "stop": [], "batch_size": batch_size, "structured": structured,
        "http": http}))


def rate(b, requests) -> float:
    answers = {}
    started = time.perf_counter()
    b.generate(requests, answers.__setitem__)
    seconds = time.perf_counter() - started
    rate.last = answers
    return sum(a.tokens_out for a in answers.values()) / seconds


def backends(args, url, model_dir):
    requests = [Request(p, seed=i, chat=True) for i, p in enumerate(PROMPTS)]
    sides = {"transformers (batch 8)": lambda: rate(backend("transformers", None, model_dir), requests)}
    for c in (1, 4, 8):
        sides[f"llama.cpp (concurrency {c})"] = (lambda c=c: rate(backend("http", url, None, c), requests))
    print(f"{len(requests)} chat prompts, greedy, up to 96 new tokens, {args.threads} threads each side")
    rates = interleave(sides, args.repeats)
    summarize(rates, "tokens/s", [(name, "transformers (batch 8)") for name in sides if name.startswith("llama")])


def structured(args, url, model_dir):
    schema = json.dumps(dialogue_schema(1, max_chars=200))
    free = [Request(p, seed=i, chat=True) for i, p in enumerate(PROMPTS)]
    held = [Request(p, seed=i, chat=True, schema=schema) for i, p in enumerate(PROMPTS)]
    sides = {"in process, free": lambda: rate(backend("transformers", None, model_dir), free),
             "in process, schema": lambda: rate(backend("transformers", None, model_dir, structured="json_schema"), held),
             "server, free": lambda: rate(backend("http", url, None), free),
             "server, schema": lambda: rate(backend("http", url, None, structured="llama_cpp"), held)}
    print(f"{len(free)} chat prompts, greedy, up to 96 new tokens; the schema: one exchange, turns up to 200 chars")
    rates = interleave(sides, args.repeats)
    summarize(rates, "tokens/s", [("in process, schema", "in process, free"), ("server, schema", "server, free")])
    valid = sum(_is_json(a.text) for a in rate.last.values())
    print(f"  last server-with-schema round: {valid} of {len(held)} answers valid JSON")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def judge(args, url, n: int = 24):
    """The judge stage's scoring on n bundled conversations through the server, free text and with the rubric's
    schema: well-formed answers, scores on the scale, and how often the verdict follows the position."""
    import pandas as pd

    from hiwar.judge import steps

    bundled = load_bundled()
    base = load_section("judge")
    http = base.http.model_copy(update={"endpoints": [base.http.endpoints[0].model_copy(
        update={"base_url": url, "concurrency": 1})], "timeout": 600.0})
    conversations = pd.DataFrame([{"conversation_id": f"c{i}", "topic": c["topic"], "country": c["country"],
                                   "messages": c["messages"]} for i, c in enumerate(bundled.conversations[:n])])
    for mode in ("none", "llama_cpp"):
        params = base.model_copy(update={"backend": "http", "model": ALIAS, "revision": None, "http": http,
                                         "language": "en", "max_new_tokens": 96, "parse_retries": 0,
                                         "max_failure_rate": 1.0, "min_score": None, "structured": mode,
                                         "cache_dir": tempfile.mkdtemp()})
        started = time.perf_counter()
        out = steps.score(params, conversations, {}, bundled.topics, bundled.countries)
        scores = out["scores"]
        judged = scores[scores["status"].eq("judged")]
        on_scale = judged[params.criteria].isin([1, 2, 3, 4, 5]).all(axis=1).sum()
        print(f"  judge, structured: {mode}: {len(judged)} of {n} well-formed on the first answer "
              f"({out['metrics']['malformed_answers']} malformed, {out['metrics']['off_schema_answers']} off the schema), "
              f"{on_scale} with every score on 1-5; {time.perf_counter() - started:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["backends", "structured", "judge"], action="append")
    add_repeats(parser, threads=True)
    args = parse(parser)
    only = set(args.only or ["backends", "structured", "judge"])
    model_dir = str(Path(tempfile.gettempdir()) / "hiwar-bench-smollm2")
    if not Path(model_dir, "config.json").is_file() and only & {"backends", "structured"}:
        import_gguf(smollm2_gguf(), model_dir)
    proc, url = serve(args.threads)
    try:
        for name in ("backends", "structured", "judge"):
            if name in only:
                print(f"\n{name}:")
                {"backends": lambda: backends(args, url, model_dir), "structured": lambda: structured(args, url, model_dir),
                 "judge": lambda: judge(args, url)}[name]()
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
