"""The evaluate stage's loop: every base model, its fine-tuned self and every baseline, on the test split.

Returns the metrics (stable keys for `dvc metrics diff`), one row per model and scored turn (with the turn's
history and reference, so human rating reads this one table), and plot data per model variant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiwar.evaluation.metrics import (
    chrf,
    embed,
    embedding_score,
    generate_replies,
    group_means,
    perplexity,
    random_pair_baseline,
    reply_prompts,
    rescale,
)
from hiwar.params import EvaluateParams, FinetuneParams
from hiwar.training.chat_format import end_of_turn


def _eos(tokenizer) -> str:
    return tokenizer.eos_token


def variants(finetune: FinetuneParams, evaluate: EvaluateParams):
    """(name, kind, loader, stop token of a tokenizer) for every model to evaluate; loaders import torch
    lazily. Trained models stop at their template's end of turn (hiwar's or their own), baselines at EOS."""
    from hiwar.training.models import load_base, load_finetuned, load_pretrained

    for name, spec in finetune.models.items():
        yield name, "base", lambda spec=spec: load_base(spec, finetune.seed), end_of_turn
        yield name, "finetuned", lambda name=name, spec=spec: load_finetuned(f"models/finetuned/{name}", spec, finetune.seed), end_of_turn
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


def evaluate(test: pd.DataFrame, finetune: FinetuneParams, params: EvaluateParams):
    """(metrics, replies, per-topic plot data, per-turn plot data)."""
    conversations = [[dict(m) for m in messages] for messages in test["messages"]]
    turns = scored_turns(test)
    turns.insert(0, "turn", range(len(turns)))
    references = embed(list(turns["reference"]), params.encoder)
    baseline = random_pair_baseline(references, params.seed)

    results, replies, per_topic, per_turn = {}, [], {}, {}
    for name, kind, load, stop in variants(finetune, params):
        tokenizer, model = load()
        model.eval()
        scores = perplexity(model, tokenizer, conversations, list(test["topic"]))
        texts = generate_replies(model, tokenizer, list(turns["history"]), params.max_new_tokens, params.batch_size,
                                 params.seed, stop_token=stop(tokenizer))
        vectors = embed(texts, params.encoder)
        scores |= embedding_score(vectors, references, baseline, params.bootstrap, params.seed)
        scores["chrf"] = chrf(texts, list(turns["reference"]))
        scores["empty_replies"] = sum(not t for t in texts)
        rescaled = rescale(np.sum(vectors * references, axis=1), baseline)
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
        print(f"evaluate {name} {kind}: perplexity {scores['perplexity']}, embedding score "
              f"{scores['embedding_score']} (rescaled {scores['embedding_score_rescaled']}), chrF {scores['chrf']}")
    index = list(turns["turn_in_conversation"])
    metrics = {
        "test_conversations": len(conversations),
        "assistant_turns": len(turns),
        "turns_per_index": {str(k): index.count(k) for k in sorted(set(index))},
        "embedding_baseline": round(float(baseline), 4),
        **results,
    }
    return metrics, pd.concat(replies, ignore_index=True), per_topic, per_turn
