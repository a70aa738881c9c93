"""The local transformers backend on a small model built here (no hub), and the backend registry."""

import numpy as np
import pytest
import torch

from hiwar.errors import HiwarError
from hiwar.generation import BACKENDS, Request, get_backend
from hiwar.generation.transformers_backend import SeededSampler, model_revision
from hiwar.params.generate import GenerateParams
from hiwar.standins import GENERATOR_TOKENS, build_model, dialogue_corpus, train_tokenizer

PROMPT = "<|prompt|>اكتب محادثة عن السفر.\n<|response|>"


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory, bundled, standin_spec):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gen")
    tokenizer = train_tokenizer(dialogue_corpus(bundled, "tiny"), 800, GENERATOR_TOKENS)
    build_model(standin_spec(arch="llama", vocab_size=800, layers=1, context=256), tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def params(generator_dir, params_data, **changes):
    base = dict(params_data["generate"], backend="transformers", model=str(generator_dir), batch_size=2,
                max_new_tokens=12)
    return GenerateParams.model_validate(base | changes)


def run(backend, requests):
    answers = {}
    backend.generate(requests, lambda i, result: answers.setdefault(i, result))
    assert sorted(answers) == list(range(len(requests)))  # each request answered exactly once
    return [answers[i] for i in range(len(requests))]


def test_batched_generation_answers_every_request_once(generator_dir, params_data):
    backend = get_backend(params(generator_dir, params_data))
    requests = [Request(prompt=PROMPT, seed=s) for s in (1, 2, 3)]
    results = run(backend, requests)
    assert all(r.finish_reason in ("stop", "length") for r in results)
    assert all(1 <= r.tokens_out <= 13 and r.tokens_in > 0 for r in results)
    assert [r.text for r in run(backend, requests)] == [r.text for r in results]  # seeded
    assert len({r.text for r in results}) > 1  # the three seeds sample differently


def test_a_requests_text_depends_on_its_seed_not_its_batch(generator_dir, params_data):
    backend = get_backend(params(generator_dir, params_data, batch_size=4))
    target = Request(prompt=PROMPT, seed=11)
    alone = run(backend, [target])[0].text
    others = [Request(prompt="<|prompt|>اكتب محادثة طويلة عن الطبخ في المغرب.\n<|response|>", seed=s) for s in (5, 6, 7)]
    assert run(backend, [*others, target])[-1].text == alone


def test_stop_strings_cut_the_answer(generator_dir, params_data):
    free = run(get_backend(params(generator_dir, params_data, max_new_tokens=24)), [Request(PROMPT, seed=3)])[0]
    stop = free.text.strip()[3:5]
    assert stop
    cut = run(get_backend(params(generator_dir, params_data, max_new_tokens=24, stop=[stop])),
              [Request(PROMPT, seed=3)])[0]
    assert stop not in cut.text and free.text.startswith(cut.text) and cut.finish_reason == "stop"


def test_chat_template_is_required_for_the_chat_template_path(generator_dir, params_data):
    backend = get_backend(params(generator_dir, params_data, template="chat"))
    with pytest.raises(HiwarError, match="generate.template: chat needs a model with a chat template"):
        run(backend, [Request("سؤال", seed=1, chat=True)])


def test_seeded_sampler_follows_temperature_and_top_p():
    scores = torch.tensor([[0.0, 5.0, 1.0, -2.0]] * 2)
    chosen = SeededSampler([1, 2], temperature=1.0, top_p=0.01)(None, scores).argmax(-1)
    assert chosen.tolist() == [1, 1]  # top_p this small keeps only the most likely token
    draws = [SeededSampler([s], temperature=5.0, top_p=1.0)(None, scores[:1]).argmax(-1).item() for s in range(200)]
    assert len(set(draws)) == 4  # a high temperature reaches every token
    again = [SeededSampler([s], temperature=5.0, top_p=1.0)(None, scores[:1]).argmax(-1).item() for s in range(200)]
    assert draws == again


def test_model_revision_changes_with_the_weights(generator_dir, tmp_path):
    import shutil

    copy = shutil.copytree(generator_dir, tmp_path / "copy")
    assert model_revision(str(copy)) == model_revision(str(generator_dir))
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_revision(str(copy)) != model_revision(str(generator_dir))
    assert model_revision("some-org/some-model") is None  # a hub id: generate.revision says which


def test_model_revision_sees_one_byte_changed_in_the_middle_of_a_large_weight_file(tmp_path):
    import os

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    shard = model / "model-00001-of-00001.safetensors"
    data = bytearray(np.random.default_rng(0).integers(0, 256, size=12 << 20, dtype=np.uint8).tobytes())
    shard.write_bytes(bytes(data))
    before = model_revision(str(model))
    stat = shard.stat()
    data[len(data) // 2] ^= 0x01  # one bit, 6 MiB from either end
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: as `cp -p` leaves it
    assert shard.stat().st_size == stat.st_size and shard.stat().st_mtime_ns == stat.st_mtime_ns
    assert model_revision(str(model)) != before
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    assert model_revision(str(model)) == before  # the fingerprint is of the content, not of the write


def test_vllm_backend_says_how_to_get_it_when_missing(params_data):
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    with pytest.raises(HiwarError, match="generate.backend: vllm is not installed"):
        get_backend(GenerateParams.model_validate(dict(params_data["generate"], backend="vllm")))


def test_turn_labels_survive_decoding(generator_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(generator_dir)
    ids = tokenizer("[|Human|] سؤال\n[|AI|] جواب", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "[|Human|] سؤال\n[|AI|] جواب"


def test_backends_are_registered_for_exactly_the_names_params_accept(params_data):
    from typing import get_args

    from pydantic import ValidationError

    accepted = set(get_args(GenerateParams.model_fields["backend"].annotation))
    assert set(BACKENDS) == accepted  # a name params accept but nobody registered would fail at generate time
    with pytest.raises(ValidationError):
        GenerateParams.model_validate(dict(params_data["generate"], backend="no-such-backend"))
