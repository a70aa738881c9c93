"""The evaluation's statistics on simulated data whose true answer is known.

Turns of one conversation share a conversation effect, as real ones do; an interval or test that treats
turns as independent is then too narrow / too eager, and these tests catch it.
"""

import numpy as np

from hiwar.stats import cluster_bootstrap_ci, paired_difference


def clustered(rng, conversations=40, mean=0.5, between=0.2, within=0.05):
    """Per-turn values: 3-8 turns per conversation, each conversation with its own offset."""
    sizes = rng.integers(3, 9, size=conversations)
    offsets = rng.normal(0, between, size=conversations)
    clusters = np.repeat(np.arange(conversations), sizes)
    return mean + offsets[clusters] + rng.normal(0, within, size=len(clusters)), list(clusters)


def test_cluster_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = []
    for trial in range(200):
        values, clusters = clustered(rng)
        lo, hi = cluster_bootstrap_ci(values, clusters, rounds=400, seed=trial)
        hits.append(lo <= 0.5 <= hi)
    # 40 clusters, percentile interval: a little under 95%. Resampling turns instead gives about 50%.
    assert 0.88 <= np.mean(hits) <= 0.99, np.mean(hits)


def test_paired_difference_finds_a_known_improvement():
    rng = np.random.default_rng(1)
    base, clusters = clustered(rng, conversations=60)
    # Fine-tuning adds 0.03 to every turn, plus per-conversation and per-turn noise of its own.
    shift = rng.normal(0, 0.05, size=60)[np.array(clusters)]
    tuned = base + 0.03 + shift + rng.normal(0, 0.02, size=len(base))
    result = paired_difference(base, tuned, clusters, rounds=2000, seed=0)
    lo, hi = result["ci95"]
    assert lo <= 0.03 <= hi and lo > 0
    assert abs(result["difference"] - np.mean(tuned - base)) < 1e-4
    assert result["p_value"] < 0.01
    assert result["conversations"] == 60 and result["items"] == len(base)
    # The same data with the roles swapped: the difference flips sign, the evidence is the same.
    swapped = paired_difference(tuned, base, clusters, rounds=2000, seed=0)
    assert swapped["difference"] == -result["difference"] and swapped["p_value"] == result["p_value"]


def test_paired_difference_holds_its_false_positive_rate_when_nothing_changed():
    rng = np.random.default_rng(2)
    p_values = []
    for trial in range(200):
        base, clusters = clustered(rng, conversations=30)
        # No true difference, but each conversation moves both ways at random: turns are not independent.
        tuned = base + rng.normal(0, 0.05, size=30)[np.array(clusters)] + rng.normal(0, 0.01, size=len(base))
        p_values.append(paired_difference(base, tuned, clusters, rounds=400, seed=trial)["p_value"])
    assert np.mean(np.array(p_values) < 0.05) <= 0.09, np.mean(np.array(p_values) < 0.05)


def test_base_vs_finetuned_comparison_reports_the_known_change_for_each_metric():
    from hiwar.evaluation.metrics import chrf, chrf_statistics
    from hiwar.evaluation.report import paired_table
    from hiwar.evaluation.run import paired

    rng = np.random.default_rng(3)
    conv = np.repeat(np.arange(20), 30)  # 20 conversations of 30 scored tokens
    nll = rng.gamma(4.0, 1.0, size=len(conv)) + rng.normal(0, 0.3, size=20)[conv]
    fmt = np.tile(np.arange(30) == 29, 20)  # each conversation's last token is an end marker
    tokens = lambda v: {"nll": v, "conversation": conv, "format": fmt}
    # Fine-tuning lowers text tokens' NLL by 0.2 on average and end markers' by 2: perplexity ratio
    # exp(-0.2) on text tokens, lower still with the markers.
    tuned_nll = nll - np.where(fmt, 2.0, 0.2) + rng.normal(0, 0.3, size=len(conv)) + rng.normal(0, 0.05, size=20)[conv]
    turns = list(np.repeat(np.arange(20), 2))
    refs = ["زرت مراكش في الربيع الماضي", "القهوة العربية تقدم مع التمر"] * 20
    base_replies = ["لا أعرف"] * 40
    side = lambda v, cos, texts: {"tokens": tokens(v), "text_tokens": {k: x[~fmt] for k, x in tokens(v).items()},
                                  "cosines": cos, "chrf": chrf_statistics(texts, refs), "turn_conversations": turns}
    cos = rng.uniform(0.7, 0.8, size=40)
    result = paired(side(nll, cos, base_replies), side(tuned_nll, cos + 0.05, refs), rounds=1000, seed=0)
    assert abs(result["perplexity_text"]["ratio"] - np.exp(-0.2)) < 0.03
    lo, hi = result["perplexity_text"]["ratio_ci95"]
    assert lo <= np.exp(-0.2) <= hi and result["perplexity_text"]["p_value"] < 0.01
    assert result["perplexity"]["ratio"] < result["perplexity_text"]["ratio"]
    assert abs(result["embedding_score"]["difference"] - 0.05) < 1e-4 and result["embedding_score"]["p_value"] < 0.01
    assert abs(result["chrf"]["difference"] - (100 - chrf(base_replies, refs))) < 0.01 and result["chrf"]["p_value"] < 0.01
    table = "\n".join(paired_table({"models": {"m": {"finetuned_minus_base": result}}}))
    assert "| m | 0." in table and "(p=0.001)" in table


def test_report_shows_the_capped_scope_and_the_paired_table(tmp_path):
    import json

    from hiwar.evaluation.report import write_report

    scores = lambda ppl: {"perplexity": ppl, "embedding_score": 0.8, "embedding_score_ci95": [0.79, 0.81],
                          "embedding_score_rescaled": 0.1, "embedding_score_rescaled_ci95": [0.05, 0.15], "chrf": 5.0}
    diff = {"difference": 0.02, "ci95": [0.01, 0.03], "p_value": 0.002}
    ratio = {"ratio": 0.7, "ratio_ci95": [0.65, 0.75], "p_value": 0.001}
    evaluate = {"test_conversations": 30, "test_conversations_total": 120, "assistant_turns": 100,
                "turns_per_index": {}, "embedding_baseline": 0.85, "embedding_baseline_ci95": [0.84, 0.86],
                "embedding_baseline_pairs": 2000,
                "models": {"m": {"base": scores(300.0), "finetuned": scores(210.0),
                                 "finetuned_minus_base": {"perplexity": ratio, "perplexity_text": ratio,
                                                          "embedding_score": diff, "chrf": diff}}}}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/evaluate.json").write_text(json.dumps(evaluate))
    text = write_report(tmp_path, tmp_path / "reports").read_text()
    assert "30 of 120 conversations (capped" in text and "2000 pairs" in text
    assert "| m | finetuned | - | 210.00 |" in text and "finetuned_minus_base" not in text
    assert "| m | 0.700 [0.650, 0.750] (p=0.001) |" in text
