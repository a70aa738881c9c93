"""Tiny stand-in models for the tiny profile, trained from the bundled conversations in a couple of minutes on CPU.

They make every stage run real model code (tokenizers, generate(), Trainer, perplexity) without a GPU or
a model hub. Their outputs say nothing about Arabic dialogue quality.

- the generator learns the tiny template: an Arabic instruction line, then a dialogue in [|Human|]/[|AI|]
  lines, so the cleaning stage has real, imperfect generations to parse;
- the base models learn plain Arabic text (no chat markers), as a pre-trained base model would have.
"""

from __future__ import annotations

import math
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from hiwar.params.models import StandIn
from hiwar.generation.prompts import format_dialogue, render_prompt
from hiwar.bundled import Bundled

BOS, EOS, PAD = "<|bos|>", "<|endoftext|>", "<|pad|>"
GENERATOR_TOKENS = ["<|prompt|>", "<|response|>"]


def dialogue_corpus(bundled: Bundled, template: str) -> list[str]:
    """Generator training texts: the rendered prompt for each bundled conversation, then the conversation."""
    texts = []
    for conv in bundled.conversations:
        topic = bundled.topics.loc[conv["topic"]]
        country = conv.get("country")
        prompt = render_prompt(
            template,
            topic_ar=topic.name_ar,
            topic_description=topic.description_ar,
            country_ar=bundled.countries.loc[country].name_ar if country in bundled.countries.index else None,
            persona_ar=None,
            exchanges=sum(m["role"] == "assistant" for m in conv["messages"]),
        )
        texts.append(prompt + format_dialogue(conv["messages"]))
    return texts


def text_corpus(bundled: Bundled) -> list[str]:
    """Base-model training texts: the bundled conversations as plain paragraphs, without speaker labels."""
    return ["\n".join(m["content"] for m in conv["messages"]) for conv in bundled.conversations]


def train_tokenizer(texts: list[str], vocab_size: int, extra_special: list[str] = ()) -> PreTrainedTokenizerFast:
    """Byte-level BPE: every string is encodable (no unknown token), as in GPT-2 and ArabianGPT."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = [EOS, PAD, BOS, *extra_special]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=list(extra_special), model_max_length=None,
    )


def build_model(spec: StandIn, tokenizer) -> torch.nn.Module:
    vocab = len(tokenizer)
    if spec.arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab, hidden_size=spec.hidden_size, intermediate_size=spec.hidden_size * 4,
            num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
            max_position_embeddings=spec.context, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
        )
        return LlamaForCausalLM(config)
    # No dropout and exact GELU: twice the training speed on CPU, and a model this small does not overfit
    # in a few hundred steps anyway.
    config = GPT2Config(
        vocab_size=vocab, n_embd=spec.hidden_size, n_layer=spec.layers, n_head=spec.heads,
        n_positions=spec.context, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        activation_function="gelu",
    )
    return GPT2LMHeadModel(config)


def blocks(tokenizer, texts: list[str], length: int) -> torch.Tensor:
    """All texts, each ended by EOS, concatenated and cut into equal blocks (standard LM pre-training)."""
    ids = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
    n = len(ids) // length
    if n == 0:
        raise ValueError(f"corpus of {len(ids)} tokens is shorter than one block of {length}")
    return torch.tensor(ids[: n * length]).view(n, length)


def pretrain(model, data: torch.Tensor, spec: StandIn, seed: int, desc: str) -> dict:
    """A plain causal-LM loop: AdamW, linear warm-up then cosine decay, gradient clipping."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.01)
    warmup = max(1, spec.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, spec.steps) / spec.steps))
    )
    model.train()
    start, losses = time.perf_counter(), []
    bar = tqdm(range(spec.steps), desc=desc, unit="step", dynamic_ncols=True)
    for step in bar:
        batch = data[torch.randint(len(data), (spec.batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
    model.eval()
    tail = losses[-max(1, spec.steps // 10):]
    return {
        "final_loss": round(sum(tail) / len(tail), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(time.perf_counter() - start, 1),
        "blocks": len(data),
    }


def build_standin(spec: StandIn, texts: list[str], seed: int, name: str, extra_special: list[str] = ()):
    """Tokenizer + model trained from `texts`; returns (tokenizer, model, metrics)."""
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(texts, spec.vocab_size, extra_special)
    tokenizer.model_max_length = spec.context
    model = build_model(spec, tokenizer)
    data = blocks(tokenizer, texts, min(spec.context, 512))
    metrics = pretrain(model, data, spec, seed, desc=f"train {name}")
    metrics["vocab_size"] = len(tokenizer)
    return tokenizer, model, metrics
