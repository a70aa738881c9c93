"""Attention for packed rows: each conversation attends to itself alone, one conversation at a time.

A packed row holds several conversations, told apart by position ids that restart at 0. transformers' sdpa
path builds a full row x row mask for such a row, so a 1,000-token row costs a million scores per head
whatever it holds. Computing each conversation's causal attention on its own costs the sum of the squares
of their lengths and needs no mask: flash-attention's variable-length kernels do the same on GPUs, and this
version runs wherever PyTorch's sdpa runs (CPUs included).

`use_packed_attention(model)` switches a model to it and proves, on a probe, that packing changes nothing.
The choice lives in the model object only: saved models load with transformers' default attention.
"""

from __future__ import annotations

import torch

from hiwar.errors import HiwarError

NAME = "hiwar_packed"


def segments(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of each conversation in one row: a new one begins wherever positions do not step by 1."""
    starts = [0] + ((torch.diff(position_ids) != 1).nonzero().flatten() + 1).tolist()
    return list(zip(starts, starts[1:] + [len(position_ids)]))


def packed_attention(module, query, key, value, attention_mask, position_ids=None, **kwargs):
    """sdpa, conversation by conversation, for rows without a mask; anything else goes to plain sdpa."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    kwargs.pop("is_causal", None)
    if attention_mask is not None or position_ids is None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    rows = []
    for b, row_positions in enumerate(position_ids.expand(query.shape[0], -1)):
        parts = [sdpa_attention_forward(module, query[b:b + 1, :, s:e], key[b:b + 1, :, s:e],
                                        value[b:b + 1, :, s:e], None, is_causal=True, **kwargs)[0]
                 for s, e in segments(row_positions)]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
    return torch.cat(rows, dim=0), None


def packed_mask(*, attention_mask=None, q_length: int, kv_length: int, **kwargs):
    """No mask for rows without padding (the position ids say where conversations end); sdpa's otherwise."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None and q_length == kv_length:
        return None
    return sdpa_mask(attention_mask=attention_mask, q_length=q_length, kv_length=kv_length, **kwargs)


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, packed_attention)
    AttentionMaskInterface.register(NAME, packed_mask)


def use_packed_attention(model) -> str:
    """Switch `model` to packed attention where its architecture allows a custom attention (else it keeps
    transformers' own packed-sequence mask), then check on a probe that a conversation's logits are the same
    packed behind another one as alone. Returns the implementation in use."""
    register()
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, AttributeError):
        pass  # the architecture takes no custom attention: transformers' mask from the position ids remains
    check_packing(model)
    return model.config._attn_implementation


@torch.no_grad()
def check_packing(model, first: int = 5, second: int = 7) -> None:
    """Raise unless a conversation packed after another gets the logits it gets alone (a model that does not
    pass position ids to its attention would let it see the first conversation)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        ids = torch.randint(0, model.config.vocab_size, (1, first + second),
                            generator=torch.Generator().manual_seed(0)).to(device)
        positions = torch.cat([torch.arange(first), torch.arange(second)]).unsqueeze(0).to(device)
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, first:]
        alone = model(input_ids=ids[:, first:], use_cache=False).logits[0]
    finally:
        model.train(was_training)
    if not torch.allclose(packed.float(), alone.float(), atol=1e-3, rtol=1e-3):
        raise HiwarError(f"packing: {type(model).__name__} lets packed conversations see each other (its attention "
                         "ignores position ids); set `packing: false` for this model")
