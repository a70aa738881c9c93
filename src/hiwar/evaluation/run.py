"""The evaluate stage's loop: every base model, its fine-tuned self and every baseline, on the test split.

Returns the metrics (stable keys for `dvc metrics diff`), one row per model and scored turn (with the turn's
history and reference, so human rating reads this one table), and plot data per model variant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.encoder import embed
from hiwar.evaluation.metrics import (
    baseline_ci,
    chrf,
    chrf_from_statistics,
    chrf_statistics,
    embedding_score,
    generate_replies,
    group_means,
    random_pair_baseline,
    reply_prompts,
    rescale,
    score_tokens,
    summarize_perplexity,
)
from hiwar.params.evaluate import EvaluateParams
from hiwar.params.finetune import FinetuneParams
from hiwar.stats import cluster_resample_weights, cluster_sums, interval, paired_difference, paired_statistic
from hiwar.training.chat_format import end_of_turn


def _eos(tokenizer) -> str:
    return tokenizer.eos_token


def variants(finetune: FinetuneParams, evaluate: EvaluateParams, finetuned_dir: str | Path):
    """(name, kind, loader, stop token of a tokenizer) for every model to evaluate, the fine-tuned ones from
    `finetuned_dir/<name>`; loaders import torch lazily. Trained models stop at their template's end of turn (hiwar's or their own), baselines at EOS."""
    from hiwar.training.models import load_base, load_finetuned, load_pretrained

    for name, spec in finetune.models.items():
        yield name, "base", lambda spec=spec: load_base(spec, finetune.seed), end_of_turn
        yield name, "finetuned", lambda name=name, spec=spec: load_finetuned(Path(finetuned_dir) / name, spec, finetune.seed), end_of_turn
    for name, baseline in evaluate.baselines.items():
        yield name, "baseline", lambda b=baseline: load_pretrained(b.path, b.trust_remote_code), _eos


def scored_turns(test: pd.DataFrame) -> pd.DataFrame:
    """One row per assistant turn of the test conversations: where it sits, its history and its reference."""
    rows = []
    for conversation_id, topic, messages in zip(test["conversation_id"], test["topic"], test["messages"]):
        messages = [dict(m) for m in messages]
        for history, reference in reply_prompts([messages]):
            index = 1 + sum(m["role"] == "assistant" for m in history)  # the assistant turn's number
            rows.append({"conversation_id": conversation_id, "topic": topic, "turn_in_conversation": index,
                         "history": history, "reference": reference})
    return pd.DataFrame(rows)


def paired(base: dict, tuned: dict, rounds: int, seed: int) -> dict:
    """Fine-tuned minus base on the same turns and tokens: difference, 95% CI (conversations resampled) and
    p-value (conversation-level permutation), for perplexity (as mean NLL, and the ratio of perplexities),
    the embedding score and chrF."""
    out = {}
    for key in ("tokens", "text_tokens"):
        if len(base[key]["nll"]) != len(tuned[key]["nll"]):
            continue  # a different tokenizer: token-level pairing impossible
        d = paired_difference(base[key]["nll"], tuned[key]["nll"], list(base[key]["conversation"]), rounds, seed)
        name = "perplexity" if key == "tokens" else "perplexity_text"
        out[name] = {"mean_nll_difference": d["difference"], "mean_nll_difference_ci95": d["ci95"],
                     "ratio": round(float(np.exp(d["difference"])), 4),
                     "ratio_ci95": [round(float(np.exp(q)), 4) for q in d["ci95"]], "p_value": d["p_value"],
                     "conversations": d["conversations"], "tokens": d["items"]}
    out["embedding_score"] = paired_difference(base["cosines"], tuned["cosines"], base["turn_conversations"], rounds, seed)
    out["chrf"] = paired_statistic(base["chrf"], tuned["chrf"], base["turn_conversations"], chrf_from_statistics,
                                   rounds, seed)
    return out


def chrf_ci(statistics: np.ndarray, conversations: list, rounds: int, seed: int) -> list[float]:
    """95% interval of corpus chrF, resampling conversations."""
    sums = np.stack([cluster_sums(col, conversations)[0] for col in statistics.T], axis=1)
    scores = chrf_from_statistics(cluster_resample_weights(len(sums), rounds, seed) @ sums)
    return interval(scores, digits=2)


def evaluate(test: pd.DataFrame, finetune: FinetuneParams, params: EvaluateParams, finetuned_dir: str | Path,
             total: int | None = None):
    """(metrics, replies, per-topic plot data, per-turn plot data) of the models in `finetune` and their
    fine-tuned selves in `finetuned_dir`. `total`: the test split's size when `test` is a capped head of it."""
    conversations = [[dict(m) for m in messages] for messages in test["messages"]]
    topics = list(test["topic"])
    turns = scored_turns(test)
    turns.insert(0, "turn", range(len(turns)))
    owners = list(turns["conversation_id"])
    references = embed(list(turns["reference"]), params.encoder)
    baseline = random_pair_baseline(references, owners, params.seed)
    rounds, seed = params.bootstrap, params.seed

    results, replies, per_topic, per_turn, raw = {}, [], {}, {}, {}
    for name, kind, load, stop in variants(finetune, params, finetuned_dir):
        tokenizer, model = load()
        model.eval()
        tokens = score_tokens(model, tokenizer, conversations, params.stride)
        scores = summarize_perplexity(tokens, topics, rounds, seed)
        lengths: list = []
        texts = generate_replies(model, tokenizer, list(turns["history"]), params.max_new_tokens, params.batch_size,
                                 seed, stop_token=stop(tokenizer), lengths=lengths)
        vectors = embed(texts, params.encoder)
        scores |= embedding_score(vectors, references, baseline, owners, rounds, seed)
        statistics = chrf_statistics(texts, list(turns["reference"]))
        scores["chrf"] = chrf(texts, list(turns["reference"]))
        scores["chrf_ci95"] = chrf_ci(statistics, owners, rounds, seed)
        scores["empty_replies"] = sum(not t for t in texts)
        scores["reply_tokens_mean"] = round(float(np.mean([n for n, _ in lengths])), 2)
        scores["replies_at_max_new_tokens"] = sum(capped for _, capped in lengths)
        cosines = np.sum(vectors * references, axis=1)
        text = ~tokens["format"]
        raw[(name, kind)] = {"tokens": tokens, "text_tokens": {k: v[text] for k, v in tokens.items()},
                             "cosines": cosines, "chrf": statistics, "turn_conversations": owners}
        rescaled = rescale(cosines, baseline["b"])
        variant = f"{name}_{kind}"
        # Breakdowns go to plot files: as metrics they would swamp `dvc metrics diff`.
        topic_ppl = scores.pop("perplexity_per_topic")
        per_topic[variant] = [{"topic": t, "embedding_score_rescaled": v, "perplexity": topic_ppl[t]}
                              for t, v in group_means(rescaled, list(turns["topic"])).items()]
        turn_embedding = group_means(rescaled, list(turns["turn_in_conversation"]))
        per_turn[variant] = [{"turn": int(t), "perplexity": v, "embedding_score_rescaled": turn_embedding.get(t)}
                             for t, v in scores.pop("perplexity_per_turn").items()]
        results.setdefault("baselines" if kind == "baseline" else "models", {}).setdefault(name, {})[kind] = scores
        replies.append(turns.assign(model=name, kind=kind, reply=texts))
        print(f"evaluate {name} {kind}: perplexity {scores['perplexity']} (text only {scores['perplexity_text']}), "
              f"embedding score {scores['embedding_score']} (rescaled {scores['embedding_score_rescaled']}), "
              f"chrF {scores['chrf']}")
    for name in finetune.models:
        if (name, "base") in raw and (name, "finetuned") in raw:
            results["models"][name]["finetuned_minus_base"] = paired(raw[name, "base"], raw[name, "finetuned"],
                                                                     rounds, seed)
    index = list(turns["turn_in_conversation"])
    metrics = {
        "test_conversations": len(conversations),
        "test_conversations_total": total if total is not None else len(conversations),
        "assistant_turns": len(turns),
        "turns_per_index": {str(k): index.count(k) for k in sorted(set(index))},
        "embedding_baseline": round(baseline["b"], 4),
        "embedding_baseline_ci95": baseline_ci(baseline, owners, rounds, seed),
        "embedding_baseline_pairs": int(len(baseline["cosines"])),
        **results,
    }
    return metrics, pd.concat(replies, ignore_index=True), per_topic, per_turn
