"""The local transformers backend on a small model built here (no hub), and the backend registry."""

import pytest

from hiwar.generation import BACKENDS, Request, get_backend
from hiwar.params import GenerateParams, StandIn
from hiwar.standins import GENERATOR_TOKENS, build_model, dialogue_corpus, train_tokenizer


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory, seed):
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gen")
    tokenizer = train_tokenizer(dialogue_corpus(seed, "tiny"), 800, GENERATOR_TOKENS)
    spec = StandIn(arch="llama", vocab_size=800, hidden_size=32, layers=1, heads=2, context=256, steps=1,
                   batch_size=1, learning_rate=1e-3)
    build_model(spec, tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def params(generator_dir, params_data, **changes):
    base = dict(params_data["generate"], backend="transformers", model=str(generator_dir), batch_size=2,
                max_new_tokens=12)
    return GenerateParams.model_validate(base | changes)


def test_batched_generation_returns_one_result_per_request_in_order(generator_dir, params_data):
    backend = get_backend(params(generator_dir, params_data))
    requests = [Request(prompt="<|prompt|>اكتب محادثة عن السفر.\n<|response|>", seed=s) for s in (1, 2, 3)]
    results = backend.generate(requests)
    assert len(results) == 3
    assert all(r.finish_reason in ("stop", "length") for r in results)
    assert all(1 <= r.tokens_out <= 13 and r.tokens_in > 0 for r in results)
    assert [r.text for r in backend.generate(requests)] == [r.text for r in results]  # seeded


def test_turn_labels_survive_decoding(generator_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(generator_dir)
    ids = tokenizer("[|Human|] سؤال\n[|AI|] جواب", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "[|Human|] سؤال\n[|AI|] جواب"


def test_backends_are_registered_by_name():
    assert set(BACKENDS) == {"transformers", "fake"}
