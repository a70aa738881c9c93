"""Stage `evaluate`: every base model, its fine-tuned self and every baseline, on the test split.

Writes metrics/evaluate.json (stable keys for `dvc metrics diff`), the generated replies, and plot data:
embedding score per topic and perplexity per assistant turn, one file per model variant.
"""

import numpy as np
import pandas as pd

from hiwar.chat_format import END
from hiwar.evaluation import (
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
from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.stage import run_stage


def variants(finetune, evaluate):
    """(name, kind, loader, stop token) for every model to evaluate; loaders import torch lazily."""
    from hiwar.training import load_base, load_finetuned

    for name, spec in finetune.models.items():
        yield name, "base", lambda spec=spec: load_base(spec, finetune.seed), END
        yield name, "finetuned", lambda name=name, spec=spec: load_finetuned(f"models/finetuned/{name}", spec, finetune.seed), END
    for name, baseline in evaluate.baselines.items():
        def load(baseline=baseline):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            kwargs = {"trust_remote_code": baseline.trust_remote_code}
            return AutoTokenizer.from_pretrained(baseline.path, **kwargs), AutoModelForCausalLM.from_pretrained(baseline.path, **kwargs)
        yield name, "baseline", load, None


def main():
    params = load_section("evaluate")
    finetune = load_section("finetune")
    test = read_parquet("data/split/test.parquet", ["conversation_id", "topic", "messages"]).head(params.max_conversations)
    conversations = [[dict(m) for m in messages] for messages in test["messages"]]
    turns = reply_prompts(conversations)
    turn_topics = [topic for topic, messages in zip(test["topic"], conversations) for m in messages if m["role"] == "assistant"]
    turn_index = [1 + sum(m["role"] == "assistant" for m in history) for history, _ in turns]
    references = embed([ref for _, ref in turns], params.encoder)
    baseline = random_pair_baseline(references, params.seed)

    results, replies, per_topic, per_turn = {}, [], {}, {}
    for name, kind, load, stop in variants(finetune, params):
        tokenizer, model = load()
        model.eval()
        scores = perplexity(model, tokenizer, conversations, list(test["topic"]))
        texts = generate_replies(model, tokenizer, [h for h, _ in turns], params.max_new_tokens, params.batch_size,
                                 params.seed, stop_token=stop or tokenizer.eos_token)
        vectors = embed(texts, params.encoder)
        scores |= embedding_score(vectors, references, baseline, params.bootstrap, params.seed)
        scores["chrf"] = chrf(texts, [ref for _, ref in turns])
        scores["empty_replies"] = sum(not t for t in texts)
        rescaled = rescale(np.sum(vectors * references, axis=1), baseline)
        variant = f"{name}_{kind}"
        # Breakdowns go to plot files: as metrics they would swamp `dvc metrics diff`.
        topic_ppl = scores.pop("perplexity_per_topic")
        per_topic[variant] = [{"topic": t, "embedding_score_rescaled": v, "perplexity": topic_ppl[t]}
                              for t, v in group_means(rescaled, turn_topics).items()]
        turn_embedding = group_means(rescaled, turn_index)
        per_turn[variant] = [{"turn": int(t), "perplexity": v, "embedding_score_rescaled": turn_embedding.get(t)}
                             for t, v in scores.pop("perplexity_per_turn").items()]
        results.setdefault("baselines" if kind == "baseline" else "models", {}).setdefault(name, {})[kind] = scores
        replies += [{"model": name, "kind": kind, "turn": i, "topic": topic, "reference": ref, "reply": text}
                    for i, ((_, ref), text, topic) in enumerate(zip(turns, texts, turn_topics))]
        print(f"evaluate {name} {kind}: perplexity {scores['perplexity']}, embedding score "
              f"{scores['embedding_score']} (rescaled {scores['embedding_score_rescaled']}), chrF {scores['chrf']}")
    write_parquet("data/eval/replies.parquet", pd.DataFrame(replies))
    for variant in per_topic:
        write_json(f"plots/evaluate/per_topic/{variant}.json", per_topic[variant])
        write_json(f"plots/evaluate/per_turn/{variant}.json", per_turn[variant])
    write_json("metrics/evaluate.json", {
        "test_conversations": len(conversations),
        "assistant_turns": len(turns),
        "turns_per_index": {str(k): turn_index.count(k) for k in sorted(set(turn_index))},
        "embedding_baseline": round(float(baseline), 4),
        **results,
    })


if __name__ == "__main__":
    run_stage(main)
