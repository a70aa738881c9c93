"""Structured answers (issue 32): JSON schemas for the judge and the generator, how each server is asked for
them, what they add to the cache key, and how cleaning reads the structured dialogue."""

import json

import pytest

from hiwar.cleaning import decide
from hiwar.cleaning.parse import parse
from hiwar.generation import Request, get_backend
from hiwar.generation.asking import plan
from hiwar.generation.cache import request_key
from hiwar.generation.http_backend import structured_body
from hiwar.generation.prompts import dialogue_schema
from hiwar.judge.parse import Malformed, parse_scores
from hiwar.judge.rubric import score_schema, verdict_schema
from hiwar.params.clean import CleanParams
from hiwar.params.generate import GenerateParams

CRITERIA = ["fluency", "coherence", "safety"]


def fake(params_data, **changes):
    return get_backend(GenerateParams.model_validate(dict(params_data["generate"], backend="fake") | changes))


def test_scores_are_an_enum_of_the_scale_because_a_grammar_ignores_minimum_and_maximum():
    schema = score_schema(CRITERIA)
    assert schema["required"] == CRITERIA and schema["additionalProperties"] is False
    assert all(schema["properties"][c] == {"type": "integer", "enum": [1, 2, 3, 4, 5]} for c in CRITERIA)
    assert verdict_schema()["properties"]["winner"]["enum"] == ["A", "B", "tie"]


def test_each_server_dialect_gets_the_schema_where_it_reads_it():
    schema = score_schema(CRITERIA)
    assert structured_body(schema, "json_schema") == {"response_format": {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}}
    assert structured_body(schema, "llama_cpp") == {"response_format": {"type": "json_object", "schema": schema}}
    assert structured_body(schema, "ollama") == {"format": schema}


def test_free_text_keeps_its_old_cache_keys_and_a_schema_asks_again(params_data):
    free, structured = fake(params_data), fake(params_data, structured="llama_cpp")
    old = request_key(model=free.model_id, revision=free.revision, decoding=free.decoding.key_fields(),
                      prompt="سؤال", chat=True, sample_index=0)
    key, request = plan(free, "سؤال", chat=True, sample_index=0, schema=score_schema(CRITERIA))
    assert key == old and request.schema is None  # structured: none sends no schema and keys as before
    with_schema, request = plan(structured, "سؤال", chat=True, sample_index=0, schema=score_schema(CRITERIA))
    other_schema, _ = plan(structured, "سؤال", chat=True, sample_index=0, schema=score_schema(CRITERIA[:2]))
    other_dialect, _ = plan(fake(params_data, structured="json_schema"), "سؤال", chat=True, sample_index=0,
                            schema=score_schema(CRITERIA))
    assert len({old, with_schema, other_schema, other_dialect}) == 4
    assert json.loads(request.schema) == score_schema(CRITERIA) and request.seed == int(with_schema[:15], 16)


def test_the_structured_dialogue_is_read_directly_and_its_form_recorded(params_data):
    schema = dialogue_schema(2)
    assert schema["properties"]["exchanges"]["minItems"] == schema["properties"]["exchanges"]["maxItems"] == 2
    answer = json.dumps({"exchanges": [
        {"user": "ما أشهر أكلة في عمّان؟", "assistant": "المنسف، ويُقدَّم في الأعراس والمناسبات الكبيرة."},
        {"user": "وهل يُؤكل باليد؟", "assistant": "نعم في العادة، باليد اليمنى ومن صدر مشترك."}]}, ensure_ascii=False)
    parsed = parse(answer)
    assert parsed.form == "json_schema" and not parsed.cut
    assert [m["role"] for m in parsed.messages] == ["user", "assistant", "user", "assistant"]
    params = CleanParams.model_validate(params_data["clean"])
    messages, _, reasons, trimmed, _, form = decide({"raw_text": answer, "finish_reason": "stop"}, params)
    assert reasons == [] and form == "json_schema" and not trimmed
    # cut at the token limit inside the second exchange: the first is kept, the answer counts as cut
    cut = answer[:answer.index("نعم")]
    parsed = parse(cut)
    assert parsed.form == "json_schema" and parsed.cut and len(parsed.messages) == 2
    assert parse("المستخدم: مرحبًا\nالمساعد: أهلًا بك").form == "text"


def test_a_score_answer_outside_the_schema_is_still_malformed():
    with pytest.raises(Malformed, match="off the scale"):
        parse_scores('{"fluency": 6, "coherence": 3, "safety": 5}', CRITERIA)


def test_requests_carry_the_schema_as_text_so_they_stay_hashable():
    request = Request("p", seed=1, chat=True, schema=json.dumps(score_schema(CRITERIA)))
    assert hash(request) and json.loads(request.schema)["required"] == CRITERIA


def test_an_in_process_model_held_to_the_schema_writes_valid_json_every_time(base_dir, params_data):
    # The untrained GPT-2 stand-in writes noise; held to the schema, the noise sits inside valid JSON.
    from hiwar.judge.rubric import score_schema as scores

    backend = get_backend(GenerateParams.model_validate(dict(params_data["generate"], backend="transformers",
                                                             model=str(base_dir), structured="json_schema",
                                                             max_new_tokens=160, batch_size=8)))
    schemas = [dialogue_schema(1, max_chars=40), scores(CRITERIA)]
    requests = [Request(f"محادثة رقم {i}", seed=i, schema=json.dumps(schemas[i % 2])) for i in range(32)]
    answers = {}
    backend.generate(requests, answers.__setitem__)
    bad = [answers[i] for i in range(32) if not answers[i].text.startswith("{")]
    assert not bad, bad[:2]
    parsed = [json.loads(answers[i].text) for i in range(32)]  # raises on the first invalid answer
    assert all(len(p["exchanges"]) == 1 and len(p["exchanges"][0]["user"]) <= 40 for p in parsed[::2])
    assert all(parse_scores(json.dumps(p), CRITERIA) for p in parsed[1::2])
    assert all(answers[i].finish_reason == "stop" for i in range(32))  # ended by the grammar, not the budget


def test_a_profile_may_skip_a_rule_by_its_reason_code_and_a_wrong_code_is_one_line(params_data):
    from hiwar.cleaning import Cleaner
    from hiwar.errors import HiwarError

    recited = {"raw_text": "المستخدم: ما عاصمة الأردن؟\nالمساعد: اكتب محادثة واقعية بين مستخدم ومساعد عن السفر في الأردن.",
               "finish_reason": "stop", "prompt": "اكتب محادثة واقعية بين مستخدم ومساعد عن السفر في الأردن."}
    strict = CleanParams.model_validate(params_data["clean"] | {"min_exchanges": 1})
    assert "echo" in decide(recited, strict)[2]
    loose = CleanParams.model_validate(params_data["clean"] | {"min_exchanges": 1, "skip_reasons": ["echo"]})
    assert "echo" not in decide(recited, loose)[2]
    with pytest.raises(HiwarError, match="clean.skip_reasons: unknown reason 'echoes'"):
        Cleaner(CleanParams.model_validate(params_data["clean"] | {"skip_reasons": ["echoes"]}))
