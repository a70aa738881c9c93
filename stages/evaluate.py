"""Stage `evaluate`: perplexity and the embedding score for every base model and its fine-tuned self."""

import pandas as pd

from hiwar.evaluation import embed, embedding_score, generate_replies, perplexity, random_pair_baseline, reply_prompts
from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.stage import run_stage


def load(kind: str, name: str, spec, seed: int):
    from hiwar.training import load_base, load_finetuned

    if kind == "base":
        return load_base(spec, seed)
    return load_finetuned(f"models/finetuned/{name}", spec, seed)


def main():
    params = load_section("evaluate")
    finetune = load_section("finetune")
    test = read_parquet("data/split/test.parquet", ["conversation_id", "topic", "messages"])
    test = test.head(params.max_conversations)
    conversations = [[dict(m) for m in messages] for messages in test["messages"]]
    turns = reply_prompts(conversations)
    references = embed([ref for _, ref in turns], params.encoder)
    baseline = random_pair_baseline(references, params.seed)

    results, replies = {}, []
    for name, spec in finetune.models.items():
        results[name] = {}
        for kind in ("base", "finetuned"):
            tokenizer, model = load(kind, name, spec, finetune.seed)
            model.eval()
            scores = perplexity(model, tokenizer, conversations)
            texts = generate_replies(model, tokenizer, [h for h, _ in turns], params.max_new_tokens,
                                     params.batch_size, params.seed)
            scores |= embedding_score(embed(texts, params.encoder), references, baseline, params.bootstrap, params.seed)
            scores["empty_replies"] = sum(not t for t in texts)
            results[name][kind] = scores
            replies += [{"model": name, "kind": kind, "turn": i, "reference": ref, "reply": text}
                        for i, ((_, ref), text) in enumerate(zip(turns, texts))]
            print(f"evaluate {name} {kind}: perplexity {scores['perplexity']}, embedding score "
                  f"{scores['embedding_score']} (rescaled {scores['embedding_score_rescaled']})")
    write_parquet("data/eval/replies.parquet", pd.DataFrame(replies))
    write_json("metrics/evaluate.json", {
        "test_conversations": len(conversations),
        "assistant_turns": len(turns),
        "embedding_baseline": round(float(baseline), 4),
        "models": results,
    })


if __name__ == "__main__":
    run_stage(main)
