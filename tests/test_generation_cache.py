"""The response cache on its own: keys, segments, and records torn by a kill."""

import json

from hiwar.generation.cache import ResponseCache, request_key

KEY_ARGS = dict(model="m", revision="r1", decoding={"temperature": 0.7, "seed": 7}, prompt="اكتب", chat=False,
                sample_index=0)


def record(key, text="[|Human|] س\n[|AI|] ج"):
    return {"key": key, "model": "m", "revision": "r1", "text": text, "finish_reason": "stop", "tokens_in": 3,
            "tokens_out": 5}


def test_every_input_that_decides_an_answer_changes_the_key():
    base = request_key(**KEY_ARGS)
    assert base == request_key(**KEY_ARGS)
    assert base == request_key(**dict(KEY_ARGS, decoding={"seed": 7, "temperature": 0.7}))  # order-free
    for change in (dict(model="m2"), dict(revision="r2"), dict(decoding={"temperature": 0.8, "seed": 7}),
                   dict(prompt="اكتبْ"), dict(chat=True), dict(sample_index=1)):
        assert request_key(**dict(KEY_ARGS, **change)) != base, change


def test_each_run_appends_to_a_new_segment_and_never_rewrites_an_old_one(tmp_path):
    with ResponseCache(tmp_path) as cache:
        cache.add(record("a"))
        cache.add(record("a", text="ignored: the key already has an answer"))
    first = sorted(tmp_path.glob("*.jsonl"))
    before = first[0].read_bytes()
    with ResponseCache(tmp_path) as cache:
        assert cache.get("a")["text"].startswith("[|Human|]")
        cache.add(record("b"))
    assert len(sorted(tmp_path.glob("*.jsonl"))) == 2 and first[0].read_bytes() == before
    assert len(ResponseCache(tmp_path)) == 2


def test_a_record_torn_by_a_kill_is_skipped_with_a_warning(tmp_path, capsys):
    segment = tmp_path / "20260101T000000-1-abc.jsonl"
    whole = json.dumps(record("a"), ensure_ascii=False) + "\n"
    torn = json.dumps(record("b"), ensure_ascii=False)[:40]  # the kill came mid-write: no newline
    segment.write_text(whole + torn, encoding="utf-8")
    cache = ResponseCache(tmp_path)
    assert "a" in cache and "b" not in cache and cache.torn == [f"{segment.name}:2"]
    assert "skipped 1 torn record" in capsys.readouterr().err
    # A line that is complete but not JSON (a crash of another kind) is torn too, and an empty line is not.
    segment.write_text(whole + "\n" + '{"key": "c", "text": \n', encoding="utf-8")
    assert ResponseCache(tmp_path).torn == [f"{segment.name}:3"]
