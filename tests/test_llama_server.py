"""hiwar against a real model server: llama.cpp's OpenAI-compatible server (llama-cpp-python) serving the
GGUF of SmolLM2-135M-Instruct on loopback. What the loopback fakes cannot show: the model's own chat template
applied by the server, real finish reasons and token counts, the server's own errors, and a real model's
malformed judge answers. SmolLM2 writes English and is no judge: these tests check the path, not quality."""

import pytest

from hiwar.errors import HiwarError
from hiwar.generation import Request, get_backend
from hiwar.generation.cache import ResponseCache
from hiwar.generation.driver import generate, summarize
from hiwar.generation.grid import build_grid
from hiwar.params.generate import GenerateParams
from hiwar.params.grid import GridParams
from hiwar.params.judge import JudgeParams

pytestmark = pytest.mark.server


def server_params(params_data, url, model, tmp_path, **changes) -> dict:
    http = dict(params_data["generate"]["http"], endpoints=[dict(base_url=url, concurrency=2)], timeout=120.0,
                max_retries=2, backoff_initial=0.05, backoff_max=0.2)
    return dict(params_data["generate"], backend="http", model=model, revision=None, template="chat",
                cache_dir=str(tmp_path / "cache"), http=http) | changes


def ask(backend, *prompts, seed=1):
    answers = {}
    backend.generate([Request(p, seed=seed, chat=True) for p in prompts], answers.__setitem__)
    return [answers[i] for i in range(len(prompts))]


def test_generation_through_llama_cpp_loses_no_request_and_a_rerun_sends_none(llama_server, params_data,
                                                                               bundled, tmp_path):
    url, model = llama_server
    params = GenerateParams.model_validate(server_params(params_data, url, model, tmp_path, max_new_tokens=24,
                                                         temperature=0.7, stop=[]))
    grid = build_grid(GridParams.model_validate(dict(params_data["grid"], conversations=6)), bundled)
    cache = ResponseCache(params.cache_dir)
    raw, accounting = generate(grid, get_backend(params), params, bundled.conversations, cache)
    metrics, facts = summarize(raw, accounting, 1.0)
    assert metrics["succeeded"] == 6 and facts["sent"] == 6
    # The server's own usage counts and finish reasons: 24 tokens cannot hold a dialogue, so answers are cut.
    # llama.cpp may count one token past max_tokens: it finishes a character cut in the middle of its bytes.
    assert (raw["tokens_in"] > 50).all() and raw["tokens_out"].between(1, 25).all()
    assert raw["finish_reason"].eq("length").sum() >= 4
    again, accounting = generate(grid, get_backend(params), params, bundled.conversations, ResponseCache(params.cache_dir))
    assert summarize(again, accounting, 1.0)[1]["sent"] == 0 and again["raw_text"].tolist() == raw["raw_text"].tolist()


def test_a_seed_gives_the_same_answer_and_a_stop_string_ends_it(llama_server, params_data, tmp_path):
    url, model = llama_server
    params = GenerateParams.model_validate(server_params(params_data, url, model, tmp_path, max_new_tokens=40,
                                                         temperature=0.8, stop=[","]))
    backend = get_backend(params)
    first, second = ask(backend, "List five fruits, separated by commas.", "List five fruits, separated by commas.")
    assert first.text == second.text  # llama.cpp samples from the request's seed: one seed, one answer
    assert "," not in first.text and first.finish_reason == "stop"


def test_a_prompt_beyond_the_context_fails_at_once_with_the_servers_reason(llama_server, params_data, tmp_path):
    url, model = llama_server
    backend = get_backend(GenerateParams.model_validate(server_params(params_data, url, model, tmp_path)))
    [answer] = ask(backend, "كلمة " * 9000)
    # llama.cpp says 400 context_length_exceeded: our request is wrong, so it is not retried
    assert answer.finish_reason == "error" and answer.attempts == 1 and "maximum context length" in answer.error


def test_a_name_llama_cpp_would_answer_anyway_is_refused_before_any_request(llama_server, params_data, tmp_path):
    url, _ = llama_server
    backend = get_backend(GenerateParams.model_validate(server_params(params_data, url, "jais-13b-chat", tmp_path)))
    with pytest.raises(HiwarError, match=r"'jais-13b-chat' is not served at .*it serves: smollm2"):
        ask(backend, "Hello")


def judge_params(params_data, llama_server, tmp_path, **changes):
    url, model = llama_server
    served = server_params(params_data, url, model, tmp_path)
    return JudgeParams.model_validate(params_data["judge"] | {
        "backend": "http", "model": model, "revision": None, "http": served["http"], "cache_dir": served["cache_dir"],
        "language": "en", "max_new_tokens": 96, "temperature": 0.0, "parse_retries": 1, "max_failure_rate": 1.0,
        "min_score": None} | changes)


def score(params, bundled, n):
    import pandas as pd

    from hiwar.judge import steps

    # the n shortest bundled conversations: a 135M model on 2 cores reads about 2,000 tokens of Arabic in seconds
    shortest = sorted(bundled.conversations, key=lambda c: sum(len(m["content"]) for m in c["messages"]))[:n]
    conversations = pd.DataFrame([{"conversation_id": f"c{i}", "topic": c["topic"], "country": c["country"],
                                   "messages": c["messages"]} for i, c in enumerate(shortest)])
    return steps.score(params, conversations, {}, bundled.topics, bundled.countries)


def test_the_judge_in_free_text_through_llama_cpp_counts_every_malformed_answer(llama_server, params_data, bundled,
                                                                                tmp_path):
    params = judge_params(params_data, llama_server, tmp_path, structured="none")
    out = score(params, bundled, 3)
    scores = out["scores"]
    # none lost to the transport (an Arabic conversation is about 2,000 SmolLM2 tokens: the server has 8,192)
    assert len(scores) == 3 and set(scores["status"]) <= {"judged", "malformed"}, scores["error"].tolist()
    # every answer was read, malformed ones included: 1 or 2 per conversation (one re-ask)
    assert scores["answers"].between(1, 2).all()
    assert out["metrics"]["malformed_answers"] == int(scores["malformed_answers"].sum())
    assert out["metrics"]["off_schema_answers"] == 0  # no schema was sent
    judged = scores[scores["status"] == "judged"]
    assert judged[params.criteria].notna().all().all()


def test_the_judge_held_to_the_rubrics_schema_answers_every_time_on_the_scale(llama_server, params_data, bundled,
                                                                            tmp_path):
    params = judge_params(params_data, llama_server, tmp_path, structured="llama_cpp", temperature=0.8,
                          max_new_tokens=64)
    out = score(params, bundled, 3)
    scores = out["scores"]
    assert scores["status"].eq("judged").all(), scores["error"].tolist()
    assert out["metrics"]["malformed_answers"] == 0 and (scores["answers"] == 1).all()
    assert scores[params.criteria].isin([1, 2, 3, 4, 5]).all().all()


def test_a_schema_form_the_server_refuses_fails_at_once_with_the_setting_to_change(llama_server, params_data, bundled,
                                                                                 tmp_path):
    # llama-cpp-python knows response_format json_object+schema, not OpenAI's json_schema, and answers 500
    params = judge_params(params_data, llama_server, tmp_path, structured="json_schema")
    scores = score(params, bundled, 1)["scores"]
    assert scores["status"].tolist() == ["request_failed"]
    assert "judge.structured: llama_cpp" in scores["error"][0] and scores["answers"][0] == 0


def test_the_generator_held_to_the_dialogue_schema_is_read_as_json_schema(llama_server, params_data, bundled,
                                                                          tmp_path):
    from hiwar.cleaning import clean
    from hiwar.params.clean import CleanParams

    url, model = llama_server
    params = GenerateParams.model_validate(server_params(params_data, url, model, tmp_path, max_new_tokens=200,
                                                         temperature=0.7, stop=[], structured="llama_cpp"))
    grid = build_grid(GridParams.model_validate(dict(params_data["grid"], conversations=3, exchanges=[2])), bundled)
    raw, _ = generate(grid, get_backend(params), params, bundled.conversations, ResponseCache(params.cache_dir))
    loose = CleanParams.model_validate(params_data["clean"] | {"min_arabic_ratio": 0.0, "max_latin_words": 100000,
                                                                "language_id": False})
    kept, rejected, metrics = clean(raw, loose)
    forms = metrics["parsed_as"]
    assert forms.get("json_schema", {}).get("kept", 0) + forms.get("json_schema", {}).get("rejected", 0) == 3, forms
    assert "unparseable" not in metrics["reasons"]
