"""The OpenAI-compatible HTTP backend against loopback servers that misbehave the way real ones do."""

import json
import threading
import time
from collections import Counter

import pytest

from hiwar.errors import HiwarError
from hiwar.generation.driver import generate, summarize
from hiwar.generation import Request, get_backend
from hiwar.generation.cache import ResponseCache
from hiwar.generation.http_backend import backoff_delay, retry_after_seconds
from hiwar.generation.grid import build_grid
from hiwar.params.generate import GenerateParams
from hiwar.params.grid import GridParams
from hiwar.evaluation.report import generation_section


def http_params(params_data, urls, tmp_path, **changes):
    http = dict(params_data["generate"]["http"], endpoints=[dict(base_url=u, concurrency=8) for u in urls],
                timeout=0.5, max_retries=8, backoff_initial=0.005, backoff_max=0.05)
    http |= changes.pop("http", {})
    return GenerateParams.model_validate(dict(params_data["generate"], backend="http", model="loopback",
                                              cache_dir=str(tmp_path / "cache"), http=http) | changes)


def small_grid(params_data, bundled, n=60):
    grid_params = GridParams.model_validate(dict(params_data["grid"], conversations=n))
    return build_grid(grid_params, bundled), grid_params


def served(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_server_that_fails_at_random_still_yields_complete_correctly_counted_output(
        loopback, params_data, bundled, tmp_path):
    url, log, _ = loopback(latency=0.01, hang=1.0, p_429=0.1, p_500=0.1, p_timeout=0.05, p_malformed=0.05,
                           p_empty=0.05, seed=3)
    grid, grid_params = small_grid(params_data, bundled)
    params = http_params(params_data, [url], tmp_path)
    backend = get_backend(params)
    raw, accounting = generate(grid, backend, params, bundled.conversations, ResponseCache(params.cache_dir))
    counts, facts = summarize(raw, accounting, 1.0, backend.endpoint_stats())
    metrics = counts | facts

    seen = served(log)
    faults = [s["fault"] for s in seen if s["fault"]]
    assert len(faults) >= 10  # the chaos really happened
    assert metrics["succeeded"] == 60 and metrics["failed"] == 0
    assert raw["raw_text"].str.startswith("[|Human|]").all()
    # Every injected fault cost exactly one retry, and every attempt is accounted for.
    assert metrics["retries"] == len(faults) and metrics["sent"] + metrics["retries"] == len(seen)
    errors = metrics["per_endpoint"][url]["errors"]
    assert errors.get("HTTP 429", 0) == faults.count("429") and errors.get("empty", 0) == faults.count("empty")
    assert metrics["empty_retried"] == faults.count("empty") and metrics["empty"] == 0
    assert errors.get("malformed", 0) == faults.count("malformed") and errors.get("timeout", 0) == faults.count("timeout")


def test_requests_that_never_succeed_are_kept_with_their_last_error(loopback, params_data, bundled, tmp_path):
    url, log, _ = loopback(p_500=1.0)
    grid, grid_params = small_grid(params_data, bundled, n=5)
    params = http_params(params_data, [url], tmp_path, http=dict(max_retries=2, eject_after=100))
    raw, accounting = generate(grid, get_backend(params), params, bundled.conversations, ResponseCache(params.cache_dir))
    assert len(raw) == 5 and raw["finish_reason"].eq("error").all()
    assert raw["error"].str.startswith("HTTP 500").all()
    assert accounting["attempts"].eq(3).all() and len(served(log)) == 15
    assert len(ResponseCache(params.cache_dir)) == 0  # failures are never cached: the next run retries them


def test_a_wrong_key_fails_fast_and_the_key_reaches_no_file(loopback, params_data, bundled, tmp_path, monkeypatch):
    secret = "sk-hiwar-test-6f1d2c"
    url, log, _ = loopback(api_key="sk-the-right-one")
    monkeypatch.setenv("HIWAR_TEST_KEY", secret)
    grid, grid_params = small_grid(params_data, bundled, n=4)
    params = http_params(params_data, [url], tmp_path,
                         http=dict(endpoints=[dict(base_url=url, concurrency=2, api_key_env="HIWAR_TEST_KEY")]))
    raw, _ = generate(grid, get_backend(params), params, bundled.conversations, ResponseCache(params.cache_dir))
    assert raw["error"].str.startswith("HTTP 401").all() and len(served(log)) == 4  # 401: no retries
    assert secret not in raw.to_json()


def test_an_unset_key_variable_is_named(params_data, tmp_path, monkeypatch):
    monkeypatch.delenv("HIWAR_NO_SUCH_KEY", raising=False)
    params = http_params(params_data, ["http://127.0.0.1:9"], tmp_path, http=dict(
        endpoints=[dict(base_url="http://127.0.0.1:9", concurrency=1, api_key_env="HIWAR_NO_SUCH_KEY")]))
    with pytest.raises(HiwarError, match=r"endpoints.0.api_key_env: environment variable HIWAR_NO_SUCH_KEY is not set"):
        get_backend(params)


def test_chat_requests_go_to_chat_completions(loopback, params_data, tmp_path):
    url, log, _ = loopback()
    backend = get_backend(http_params(params_data, [url], tmp_path))
    answers = {}
    backend.generate([Request("اكتب محادثة قصيرة.", seed=5, chat=True)], answers.__setitem__)
    assert answers[0].ok and answers[0].text.startswith("[|Human|]") and served(log)[0]["seed"] == 5


def test_retry_after_sets_the_least_wait():
    assert retry_after_seconds("2.5") == 2.5 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now
    assert retry_after_seconds("soon") is None
    assert backoff_delay(0, 1.0, 60, retry_after=7.0) == 7.0
    delays = [backoff_delay(3, 1.0, 60, None) for _ in range(50)]
    assert all(4.0 <= d <= 8.0 for d in delays) and len(set(delays)) > 1  # doubling, with jitter
    assert backoff_delay(20, 1.0, 60, None) <= 60


def test_three_servers_one_killed_half_way_answer_every_request_exactly_once(loopback, params_data, bundled, tmp_path):
    servers = [loopback(name=f"s{i}", latency=0.05) for i in range(3)]
    urls = [url for url, _, _ in servers]
    grid, grid_params = small_grid(params_data, bundled, n=90)
    params = http_params(params_data, urls, tmp_path, http=dict(
        endpoints=[dict(base_url=u, concurrency=3) for u in urls], eject_after=2, cooldown=60))
    backend = get_backend(params)
    cache = ResponseCache(params.cache_dir)
    killed = servers[1][2]

    def kill_half_way():
        while len(cache) < 45:
            time.sleep(0.01)
        killed.kill()

    threading.Thread(target=kill_half_way, daemon=True).start()
    raw, accounting = generate(grid, backend, params, bundled.conversations, cache)

    assert len(raw) == 90 and raw["finish_reason"].ne("error").all()
    assert raw["request_key"].is_unique and len(ResponseCache(params.cache_dir)) == 90  # none lost, none twice
    stats = backend.endpoint_stats()
    by_endpoint = Counter(record["endpoint"] for record in ResponseCache(params.cache_dir).records.values())
    assert {url: s["answered"] for url, s in stats.items()} == {url: by_endpoint[url] for url in urls}
    assert all(by_endpoint[url] > 0 for url in urls)  # the killed one had answered some before it died
    assert stats[urls[1]]["ejections"] == 1 and stats[urls[1]]["errors"]
    # Every answer attributed to a server was received by that server (its log), and by no other after the kill.
    for (url, log, _), name in zip(servers, ("s0", "s1", "s2")):
        seen = {entry["seed"] for entry in served(log)}
        answered = {int(key[:15], 16) for key, r in ResponseCache(params.cache_dir).records.items() if r["endpoint"] == url}
        assert answered <= seen, name
    # The report's table says the same: one row per endpoint with its answers.
    report = "\n".join(generation_section(*summarize(raw, accounting, 1.0, stats)))
    for url in urls:
        assert f"| {url} | {by_endpoint[url]} | {stats[url]['attempts']} |" in report


def test_loopback_with_capacity_queues_requests_beyond_it(loopback):
    """Capacity 2, 0.4 s per answer: 6 requests sent at once take 3 rounds, not one."""
    import json
    import threading
    import time
    import urllib.request

    def elapsed(url: str) -> float:
        def one(i):
            body = json.dumps({"model": "loopback", "prompt": f"طلب {i}", "seed": i}).encode()
            request = urllib.request.Request(f"{url}/completions", body, {"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=30).read()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    limited, _, _ = loopback(name="limited", latency=0.4, capacity=2)
    unlimited, _, _ = loopback(name="unlimited", latency=0.4)
    assert elapsed(limited) >= 3 * 0.4 - 0.05
    assert elapsed(unlimited) < 2 * 0.4


def test_a_model_the_server_does_not_list_stops_before_any_request(loopback, params_data, tmp_path):
    url, log, _ = loopback()
    backend = get_backend(http_params(params_data, [url], tmp_path, model="qwen2.5-7b-instruct"))
    with pytest.raises(HiwarError, match=r"generate\.model: 'qwen2\.5-7b-instruct' is not served at .* loopback"):
        backend.generate([Request("سؤال", seed=1)], lambda i, r: None)
    assert not log.exists() or served(log) == []


def test_no_server_at_any_endpoint_is_one_line_naming_the_urls(params_data, tmp_path):
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    backend = get_backend(http_params(params_data, [url], tmp_path), section="judge")
    with pytest.raises(HiwarError, match=rf"judge\.http\.endpoints: no server answers at {url}"):
        backend.generate([Request("سؤال", seed=1)], lambda i, r: None)
