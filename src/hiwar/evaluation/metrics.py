"""Evaluation: assistant-token perplexity (within a model) and the embedding score (across models).

Perplexity uses the same labels as training (chat_format.encode), so it measures exactly the tokens a
fine-tuned model was taught; conversations longer than the model's context are scored with sliding windows.

The embedding score is hiwar's documented reconstruction of the paper's RAVEN (the paper's definition is
not available): for every held-out assistant turn the model replies to the reference history; reply and
reference are embedded with a multilingual sentence encoder; the score is the mean cosine, also reported
rescaled against the similarity of random reference pairs from different conversations, b: (s - b) / (1 - b).
Intervals resample conversations (hiwar/stats.py), since turns of one conversation are not independent.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hiwar.training.chat_format import END, IGNORE, ROLE_TOKENS, encode, label_runs, render
from hiwar.errors import HiwarError
from hiwar.stats import cluster_bootstrap_ci, cluster_resample_weights, cluster_sums, interval


def context_length(model) -> int:
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise HiwarError(f"{config.name_or_path}: the model config names no context length")


@torch.inference_mode()
def token_nlls(model, input_ids: list[int], labels: list[int], context: int, stride: int | None = None) -> np.ndarray:
    """NLL of every labelled token (in order), in windows of `context` tokens that start `stride` apart
    (default half a window).

    Each labelled token is scored once, in the first window that contains it with at least context - stride
    tokens of history (or in the first window, at the start of the sequence): a small stride gives every
    token close to the full context, at context / stride times the compute.
    """
    ids, targets = torch.tensor([input_ids]), torch.tensor([labels])
    stride = min(context, stride or max(1, context // 2))
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


def score_tokens(model, tokenizer, conversations: list[list[dict]], stride: int | None = None) -> dict:
    """Every scored (assistant) token's NLL with its conversation index, assistant-turn number (from 1) and
    whether it is a chat-format token (role marker, end marker, any special token) rather than text."""
    context = context_length(model)
    # hiwar's role and end markers, and any special token (a baseline's own template markers, e.g. an end token)
    vocab = tokenizer.get_vocab()
    markers = {vocab[t] for t in ROLE_TOKENS if t in vocab} | set(tokenizer.all_special_ids)
    columns = {"nll": [], "conversation": [], "turn": [], "format": []}
    for index, messages in enumerate(tqdm(conversations, desc="perplexity", unit="conv", dynamic_ncols=True)):
        enc = encode(tokenizer, messages, max_length=10**9)
        nlls = token_nlls(model, enc.input_ids, enc.labels, context, stride)
        targets = [label for label in enc.labels[1:] if label != IGNORE]
        columns["nll"].append(nlls)
        columns["conversation"].append(np.full(len(nlls), index))
        columns["turn"].append(np.array(turn_of_label(enc.labels)) + 1)
        columns["format"].append(np.array([t in markers for t in targets], dtype=bool))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()}


def summarize_perplexity(tokens: dict, topics: list[str], rounds: int, seed: int) -> dict:
    """Perplexity over assistant tokens (token-weighted) with a 95% CI that resamples conversations; the
    same without chat-format tokens (Arabic text only); per assistant-turn index and per topic."""
    nll, conv, text = tokens["nll"], tokens["conversation"], ~tokens["format"]
    low, high = cluster_bootstrap_ci(nll, list(conv), rounds, seed)
    topic_of = np.asarray(topics, dtype=object)[conv]
    out = {
        "perplexity": _ppl(nll), "perplexity_ci95": [round(math.exp(low), 4), round(math.exp(high), 4)],
        "mean_nll": round(float(nll.mean()), 6), "tokens": int(len(nll)),
        "perplexity_text": _ppl(nll[text]), "tokens_text": int(text.sum()),
        "perplexity_per_turn": {str(t): _ppl(nll[tokens["turn"] == t]) for t in sorted(set(tokens["turn"].tolist()))},
        "perplexity_per_topic": {t: _ppl(nll[topic_of == t]) for t in sorted(set(topics))},
    }
    return out


def perplexity(model, tokenizer, conversations: list[list[dict]], topics: list[str] | None = None,
               stride: int | None = None, rounds: int = 1000, seed: int = 0) -> dict:
    """Perplexity over assistant tokens: overall (token-weighted), without format tokens, per assistant-turn
    index and per topic."""
    topics = topics or ["all"] * len(conversations)
    return summarize_perplexity(score_tokens(model, tokenizer, conversations, stride), topics, rounds, seed)


def reply_prompts(conversations: list[list[dict]]) -> list[tuple[list[dict], str]]:
    """(history, reference) for every assistant turn."""
    return [(messages[:i], m["content"]) for messages in conversations for i, m in enumerate(messages)
            if m["role"] == "assistant"]


def chrf(replies: list[str], references: list[str]) -> float:
    """Corpus chrF (character n-grams, sacrebleu): a lexical check that needs no word segmentation, so it
    is safe for Arabic. 100 for identical texts."""
    from sacrebleu.metrics import CHRF

    return round(CHRF().corpus_score(list(replies), [list(references)]).score, 2)


def chrf_statistics(replies: list[str], references: list[str]) -> np.ndarray:
    """Per-turn chrF counts (hypothesis, reference and matched n-grams per order), one row per turn: corpus
    chrF is a function of their column sums, so any resample of conversations is scored exactly. Uses
    sacrebleu's own statistics methods (underscored; requirements.txt pins sacrebleu, and a test checks the
    sums against corpus_score)."""
    from sacrebleu.metrics import CHRF

    return np.asarray(CHRF()._extract_corpus_statistics(list(replies), [list(references)]), dtype=float)


def chrf_from_statistics(sums: np.ndarray) -> np.ndarray:
    """Corpus chrF of each row of summed statistics (rows, columns) -> (rows,)."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return np.array([metric._compute_f_score(list(row)) for row in np.atleast_2d(sums)])


@torch.inference_mode()
def generate_replies(model, tokenizer, histories: list[list[dict]], max_new_tokens: int, batch_size: int,
                     seed: int, progress: bool = True, stop_token: str = END, lengths: list | None = None) -> list[str]:
    """Greedy replies, batched with left padding; prompts keep their most recent tokens when too long.
    Generation stops at `stop_token` (hiwar's end-of-turn marker, or a baseline's own end token), or after
    max_new_tokens. When `lengths` is a list, each reply's length in tokens (before the stop token) and
    whether it hit max_new_tokens are appended to it as (tokens, capped), in input order."""
    torch.manual_seed(seed)
    context = context_length(model)
    end_id = tokenizer.convert_tokens_to_ids(stop_token)
    room = context - max_new_tokens
    prompts = [tokenizer(render(tokenizer, h, add_generation_prompt=True), add_special_tokens=False)["input_ids"][-room:]
               for h in histories]
    # Batches of similar length waste little on padding; replies go back to the input order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    sizes: list[tuple[int, bool]] = [(0, False)] * len(prompts)
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
            real = row[: int(stop[0])] if len(stop) else row
            replies[i] = tokenizer.decode(real, skip_special_tokens=True).strip()
            sizes[i] = (len(real), not len(stop))
    if lengths is not None:
        lengths.extend(sizes)
    return replies


def random_pairs(conversations: list, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) of `pairs` random pairs of items from different conversations (drawn with
    replacement); every such pair, once, when there are fewer."""
    conv = np.asarray([str(c) for c in conversations])
    n = len(conv)
    every = n * (n - 1) // 2
    if every <= 4 * pairs:  # small split: enumerate the cross-conversation pairs
        i, j = np.triu_indices(n, k=1)
        keep = conv[i] != conv[j]
        i, j = i[keep], j[keep]
        if len(i) <= pairs:
            if not len(i):
                raise HiwarError("the embedding baseline needs reference turns from at least two conversations")
            return i, j
        pick = np.random.default_rng(seed).choice(len(i), size=pairs, replace=False)
        return i[pick], j[pick]
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, size=4 * pairs), rng.integers(0, n, size=4 * pairs)
    keep = conv[i] != conv[j]
    return i[keep][:pairs], j[keep][:pairs]


def random_pair_baseline(references: np.ndarray, conversations: list, seed: int, pairs: int = 2000) -> dict:
    """b: the mean cosine of random pairs of references from different conversations (what unrelated
    replies score), with the pairs kept so its uncertainty can enter the rescaled score's interval."""
    i, j = random_pairs(conversations, pairs, seed)
    cosines = np.sum(references[i] * references[j], axis=1)
    return {"b": float(cosines.mean()), "i": i, "j": j, "cosines": cosines}


def baseline_draws(baseline: dict, conversations: list, weights: np.ndarray) -> np.ndarray:
    """b in each bootstrap round: the pairs weighted by how often each of their two conversations was drawn
    (weights: rounds x conversations, in order of first appearance)."""
    number = {c: k for k, c in enumerate(dict.fromkeys(conversations))}
    of = np.array([number[c] for c in conversations])
    pair_weight = weights[:, of[baseline["i"]]] * weights[:, of[baseline["j"]]]
    total = pair_weight.sum(axis=1)
    # A round that drew one conversation only (possible in tiny splits) has no pair: no b, left out.
    return np.where(total > 0, pair_weight @ baseline["cosines"] / np.maximum(total, 1e-12), np.nan)


def baseline_ci(baseline: dict, conversations: list, rounds: int, seed: int) -> list[float]:
    weights = cluster_resample_weights(len(set(conversations)), rounds, seed)
    draws = baseline_draws(baseline, conversations, weights)
    return interval(draws[~np.isnan(draws)])  # rounds without a baseline pair


def rescale(score, baseline: float):
    return (score - baseline) / (1 - baseline)


def embedding_score(replies: np.ndarray, references: np.ndarray, baseline: dict, conversations: list,
                    rounds: int, seed: int) -> dict:
    """Mean cosine of reply and reference, and rescaled by b, each with a 95% interval that resamples
    conversations. In each round b is recomputed from the pairs whose two conversations were drawn (weighted
    by how often), so the rescaled interval includes b's own uncertainty."""
    cosines = np.sum(replies * references, axis=1)
    sums, counts = cluster_sums(cosines, conversations)
    weights = cluster_resample_weights(len(sums), rounds, seed)
    means = (weights @ sums) / (weights @ counts)
    rescaled = rescale(means, baseline_draws(baseline, conversations, weights))
    return {
        "embedding_score": round(float(cosines.mean()), 4),
        "embedding_score_ci95": interval(means),
        "embedding_score_rescaled": round(float(rescale(cosines.mean(), baseline["b"])), 4),
        "embedding_score_rescaled_ci95": interval(rescaled[~np.isnan(rescaled)]),  # rounds without a baseline pair
        "turns": int(len(cosines)),
    }


def group_means(values: np.ndarray, keys: list) -> dict:
    """Mean of `values` per key, keys sorted."""
    groups: dict = {}
    for value, key in zip(values, keys):
        groups.setdefault(key, []).append(value)
    return {str(k): round(float(np.mean(v)), 4) for k, v in sorted(groups.items())}
