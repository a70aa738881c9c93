"""A small OpenAI-compatible server on loopback, for tests, benches and trying the http backend without a
GPU: `python -m hiwar.loopback --port 8000`.

It answers /v1/completions and /v1/chat/completions with a bundled conversation chosen by a hash of the prompt
and the request's seed (the same request always gets the same answer), after a fixed latency. On request it
misbehaves at random like real servers do: 429 with Retry-After, 500, answers that come too late, malformed
JSON, empty text. With a capacity k it works on at most k requests at once and queues the rest, as a GPU
server with k batch slots does, so adding servers adds capacity rather than only requests in flight. Every request is appended to a JSON-lines log (prompt hash, seed, what was done), which
the tests use to count what was sent.

With --judge it also plays an LLM judge with known flaws (hiwar.judge): a request carrying the judge
prompt's tags is answered with the judge's JSON, scores derived from a hash of the text judged; on a share
of pairwise items (--judge-first-share, drawn per item, whatever the order) it prefers the first reply, and
on a share of requests (--judge-malformed-share, drawn per prompt and seed) it answers malformed JSON. The
log records what it answered, so a test can check the pipeline against what the judge really said.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import sys

FAULTS = ("429", "500", "timeout", "malformed", "empty")
# Answers a strict parser must refuse: cut short, off the scale, a key missing, a score as text, prose around.
MALFORMED_JUDGE = ('{"winner": "A"', "SCORES_OFF_SCALE", "SCORES_MISSING_KEY", "SCORES_AS_TEXT",
                   'الحكم: {"winner": "tie"}')


def _draw(*parts) -> float:
    """A number in [0, 1) fixed by its inputs: the same item always gets the same draw."""
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:13], 16) / 16 ** 13


def _between(text: str, tag: str) -> str | None:
    start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
    return text[start + len(tag) + 2:end].strip() if 0 <= start < end else None


def judge_answer(prompt: str, seed, first_share: float, malformed_share: float) -> tuple[str, str] | None:
    """(answer, what it is) for a judge prompt, None for any other prompt."""
    reply_a, reply_b = _between(prompt, "reply_a"), _between(prompt, "reply_b")
    judged = _between(prompt, "conversation") or _between(prompt, "reply")
    if reply_a is None and judged is None:
        return None
    keys = re.findall(r'"(\w+)": <1-5>', prompt)
    if _draw(prompt, seed, "malformed") < malformed_share:
        form = MALFORMED_JUDGE[int(_draw(prompt, seed, "form") * len(MALFORMED_JUDGE))]
        scores = {k: 3 for k in keys}
        if form == "SCORES_OFF_SCALE":
            form = json.dumps({**scores, keys[0]: 6} if keys else {"winner": "first"})
        elif form == "SCORES_MISSING_KEY":
            form = json.dumps(dict(list(scores.items())[1:]) if keys else {})
        elif form == "SCORES_AS_TEXT":
            form = json.dumps({k: "3" for k in keys} if keys else {"winner": "a"})
        return form, "malformed"
    if reply_a is not None:
        pair = sorted([reply_a, reply_b])  # the item, whichever order it is shown in
        if _draw(*pair, "first") < first_share:
            return json.dumps({"winner": "A"}), "first"
        if reply_a == reply_b or _draw(*pair, "tie") < 0.2:
            return json.dumps({"winner": "tie"}), "tie"
        better = max(pair, key=lambda r: _draw(r, "quality"))
        return json.dumps({"winner": "A" if better == reply_a else "B"}), "fair"
    return json.dumps({k: 1 + int(_draw(judged, k) * 5) for k in keys}), "scores"


def build_app(*, latency: float = 0.0, faults: dict[str, float] | None = None, hang: float = 5.0,
              retry_after: float = 0.05, api_key: str | None = None, log: str | None = None, rng_seed: int = 0,
              name: str = "loopback", judge: bool = False, judge_first_share: float = 0.0,
              judge_malformed_share: float = 0.0, capacity: int | None = None):
    from aiohttp import web

    from hiwar.generation.prompts import format_dialogue
    from hiwar.bundled import load_bundled

    conversations = load_bundled().conversations
    faults = faults or {}
    rng = random.Random(rng_seed)
    log_file = open(log, "a", encoding="utf-8") if log else None
    slots = None  # asyncio.Semaphore(capacity), made inside the server's event loop on first use

    def record(entry: dict) -> None:
        if log_file:
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()

    async def complete(request: web.Request, chat: bool) -> web.Response:
        if api_key and request.headers.get("Authorization") != f"Bearer {api_key}":
            record({"server": name, "fault": "401"})
            return web.json_response({"error": "invalid API key"}, status=401)
        body = await request.json()
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        digest = hashlib.sha256(f"{prompt}\x1f{body.get('seed')}".encode()).hexdigest()
        draw, fault = rng.random(), None
        for kind in FAULTS:
            draw -= faults.get(kind, 0.0)
            if draw < 0:
                fault = kind
                break
        # response_format is read and ignored, as by a server without structured output: the log says it came
        record({"server": name, "request": digest[:16], "seed": body.get("seed"), "fault": fault,
                "schema": "response_format" in body or "format" in body})
        nonlocal slots
        if capacity and slots is None:
            slots = asyncio.Semaphore(capacity)
        if slots is None:
            await asyncio.sleep(hang if fault == "timeout" else latency)
        else:
            async with slots:  # the others wait in line, as at a busy server
                await asyncio.sleep(hang if fault == "timeout" else latency)
        if fault == "429":
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": str(retry_after)})
        if fault == "500":
            return web.json_response({"error": "internal error"}, status=500)
        if fault == "malformed":
            return web.Response(text='{"choices": [{"text": "مقطوع', content_type="application/json")
        scripted = judge_answer(prompt, body.get("seed"), judge_first_share, judge_malformed_share) \
            if judge and fault is None else None
        if scripted:
            record({"server": name, "request": digest[:16], "seed": body.get("seed"), "judge": scripted[1],
                    "answer": scripted[0]})
        text = scripted[0] if scripted else "" if fault == "empty" else format_dialogue(conversations[int(digest, 16) % len(conversations)]["messages"])
        words = len(text.split())
        finish = "stop" if words < body.get("max_tokens", 10**9) else "length"
        choice = ({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        return web.json_response({
            "id": f"cmpl-{digest[:12]}", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish, **choice}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": words},
        })

    async def models(_request):
        return web.json_response({"data": [{"id": "loopback"}]})

    app = web.Application()
    app.router.add_post("/v1/completions", lambda r: complete(r, chat=False))
    app.router.add_post("/v1/chat/completions", lambda r: complete(r, chat=True))
    app.router.add_get("/v1/models", models)
    return app


def main(argv=None) -> None:
    from aiohttp import web

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--hang", type=float, default=5.0, help="seconds a 'timeout' fault waits")
    parser.add_argument("--retry-after", type=float, default=0.05, help="Retry-After sent with a 429")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--log", default=None, help="append one JSON line per request here")
    parser.add_argument("--name", default="loopback", help="server name written in the log")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--judge", action="store_true", help="answer judge prompts (hiwar.judge) with JSON")
    parser.add_argument("--judge-first-share", type=float, default=0.0,
                        help="share of pairwise items on which the judge prefers the first reply")
    parser.add_argument("--judge-malformed-share", type=float, default=0.0,
                        help="share of judge requests answered with malformed JSON")
    parser.add_argument("--capacity", type=int, default=None,
                        help="serve at most this many requests at once and queue the rest (default: no limit)")
    for kind in FAULTS:
        parser.add_argument(f"--p-{kind}", type=float, default=0.0, help=f"share of requests answered with: {kind}")
    args = parser.parse_args(argv)
    faults = {kind: getattr(args, f"p_{kind}") for kind in FAULTS}

    async def serve():
        runner = web.AppRunner(build_app(latency=args.latency, faults=faults, hang=args.hang,
                                         retry_after=args.retry_after, api_key=args.api_key, log=args.log,
                                         rng_seed=args.seed, name=args.name, judge=args.judge,
                                         judge_first_share=args.judge_first_share,
                                         judge_malformed_share=args.judge_malformed_share, capacity=args.capacity),
                               access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
