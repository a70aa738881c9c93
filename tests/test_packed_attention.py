"""Packing changes nothing but speed: packed rows give the loss and the gradients of padded batches, with
hiwar's per-conversation attention and with transformers' own mask, and a model that would let packed
conversations see each other is refused."""

import pytest
import torch

from hiwar.training.chat_format import encode
from hiwar.errors import HiwarError
from hiwar.training.packed_attention import NAME, check_packing, register, segments, use_packed_attention
from hiwar.standins import build_model
from hiwar.training.data import PadCollator, pack


def test_segments_start_wherever_positions_restart():
    positions = torch.tensor([0, 1, 2, 0, 1, 0, 0, 1, 2, 3])
    assert segments(positions) == [(0, 3), (3, 5), (5, 6), (6, 10)]
    assert segments(torch.arange(4)) == [(0, 4)]


@pytest.fixture
def examples(bpe_tokenizer, bundled):
    out = []
    for conv in bundled.conversations[:8]:  # short exchanges of varied length, so several fit in a row
        user, answer = conv["messages"][:2]
        messages = [dict(user, content=user["content"][:30]),
                    dict(answer, content=answer["content"][:20 + 10 * len(out)])]
        enc = encode(bpe_tokenizer, messages, 128)
        out.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return out


def model_for(spec, tokenizer):
    torch.manual_seed(0)
    return build_model(spec, tokenizer)


def loss_and_grads(model, batch):
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("attention", ["sdpa", NAME])
def test_packed_rows_give_the_loss_and_gradients_of_padded_batches(arch, attention, examples, bpe_tokenizer, standin_spec):
    rows = pack(examples, 128)
    assert len(rows) < len(examples)  # something was packed
    collate = PadCollator(bpe_tokenizer.pad_token_id)
    model = model_for(standin_spec(arch=arch), bpe_tokenizer)
    padded_loss, padded_grads = loss_and_grads(model, collate(examples))
    register()
    model.set_attn_implementation(attention)
    packed_loss, packed_grads = loss_and_grads(model, collate(rows))
    assert packed_loss == pytest.approx(padded_loss, abs=1e-5)
    assert padded_grads.keys() == packed_grads.keys()
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_packed_attention_is_used_where_the_architecture_allows_it(bpe_tokenizer, standin_spec):
    model = model_for(standin_spec(), bpe_tokenizer)
    assert use_packed_attention(model) == NAME
    assert model.training  # the probe leaves the mode as it found it


def leaky_attention(module, query, key, value, attention_mask, position_ids=None, **kwargs):
    """Causal attention over the whole row: what a model that drops position ids would do."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    kwargs.pop("is_causal", None)
    return sdpa_attention_forward(module, query, key, value, None, is_causal=True, **kwargs)


def test_packing_is_refused_when_conversations_would_see_each_other(bpe_tokenizer, standin_spec):
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register("leaky", leaky_attention)
    AttentionMaskInterface.register("leaky", lambda **kwargs: None)
    model = model_for(standin_spec(), bpe_tokenizer)
    model.set_attn_implementation("leaky")
    with pytest.raises(HiwarError, match="packing: GPT2LMHeadModel lets packed conversations see each other"):
        check_packing(model)
