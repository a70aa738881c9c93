"""`hiwar report`: the evaluation as the paper reports it, a Markdown table plus PNG charts.

Perplexity is shown per model family only (base vs its fine-tuned self): tokenizers differ, so it is never
ranked across families. The embedding score and chrF need no tokenizer and compare across all rows.
"""

from __future__ import annotations

from pathlib import Path

from hiwar.io import read_json


def _ci(values) -> str:
    return f"[{values[0]:.3f}, {values[1]:.3f}]"


def table(evaluate: dict, train: dict[str, dict], ratings: dict) -> str:
    human = ratings.get("models", {}) if ratings.get("status") == "rated" else {}
    lines = ["| model | variant | method | perplexity (within model) | embedding score [95% CI] | rescaled [95% CI] "
             "| chrF | human score [95% CI] |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [(name, kind, scores) for group in ("models", "baselines")
            for name, kinds in evaluate.get(group, {}).items() for kind, scores in kinds.items()]
    for name, kind, s in rows:
        method = train.get(name, {}).get("method", "-") if kind == "finetuned" else "-"
        rated = human.get(f"{name}_{kind}")
        human_cell = f"{rated['mean_score']:.2f} {_ci(rated['mean_score_ci95'])}" if rated else "not rated"
        lines.append(f"| {name} | {kind} | {method} | {s['perplexity']:.2f} | {s['embedding_score']:.3f} "
                     f"{_ci(s['embedding_score_ci95'])} | {s['embedding_score_rescaled']:.3f} "
                     f"{_ci(s['embedding_score_rescaled_ci95'])} | {s['chrf']:.1f} | {human_cell} |")
    return "\n".join(lines)


def generation_section(generate: dict, run: dict) -> list[str]:
    """How the dataset's requests went: totals, and (from the last run's facts) the cache, retries and who
    served them when generation used servers."""
    if not generate:
        return []
    cached = f" ({run['cache_hits']} from the cache in the last run, {run['retries']} retries)" if run else ""
    lines = ["## Generation", "",
             f"{generate['requested']} requests: {generate['succeeded']} answered{cached}, {generate['failed']} "
             f"failed, {generate['hit_max_tokens']} hit max_new_tokens; {generate['tokens_out']} tokens written.", ""]
    endpoints = (run or {}).get("per_endpoint") or {}
    if endpoints:
        lines += ["| endpoint | answered | attempts | errors | ejections | latency mean / p50 / p95 (s) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for url, e in endpoints.items():
            errors = ", ".join(f"{kind} x{n}" for kind, n in e["errors"].items()) or "none"
            latency = " / ".join("-" if e[k] is None else f"{e[k]:.3f}" for k in ("latency_mean", "latency_p50", "latency_p95"))
            lines.append(f"| {url} | {e['answered']} | {e['attempts']} | {errors} | {e['ejections']} | {latency} |")
        lines.append("")
    return lines


def training_data_section(train: dict[str, dict]) -> list[str]:
    """What each model was trained on after truncation to its max_length (metrics/train/<model>.json):
    nothing dropped quietly. Older metrics without these figures show as '-'."""
    if not train:
        return []
    lines = ["## Training data per model", "",
             "| model | chat format | max_length | tokens per word | exchanges dropped | assistant tokens dropped |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, m in sorted(train.items()):
        t = m.get("train", {})
        exchanges = (f"{t['exchanges_dropped']} of {t['exchanges']} ({t['exchanges_dropped_share']:.1%})"
                     if "exchanges" in t else "-")
        tokens = f"{t['assistant_tokens_dropped_share']:.1%}" if "assistant_tokens_dropped_share" in t else "-"
        lines.append(f"| {name} | {m.get('chat_format', '-')} | {m.get('max_length', '-')} | "
                     f"{t.get('tokens_per_word', '-')} | {exchanges} | {tokens} |")
    return lines + [""]


def charts(plots: Path, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    per_turn = {p.stem: read_json(p) for p in sorted((plots / "per_turn").glob("*.json"))}
    if per_turn:
        fig, ax = plt.subplots(figsize=(7, 4))
        for variant, rows in per_turn.items():
            ax.plot([r["turn"] for r in rows], [r["perplexity"] for r in rows], marker="o", label=variant)
        ax.set(xlabel="assistant turn", ylabel="perplexity (within model)", title="Perplexity per turn")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "perplexity_per_turn.png", dpi=120)
        written.append("perplexity_per_turn.png")
    per_topic = {p.stem: read_json(p) for p in sorted((plots / "per_topic").glob("*.json"))}
    if per_topic:
        topics = sorted({r["topic"] for rows in per_topic.values() for r in rows})
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(topics) + 1.5))
        height = 0.8 / len(per_topic)
        for i, (variant, rows) in enumerate(per_topic.items()):
            value = {r["topic"]: r["embedding_score_rescaled"] for r in rows}
            ax.barh([t + i * height for t in range(len(topics))], [value.get(t, 0) for t in topics], height,
                    label=variant)
        ax.set_yticks([t + 0.4 - height / 2 for t in range(len(topics))], topics, fontsize=7)
        ax.set(xlabel="embedding score, rescaled", title="Embedding score per topic")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "embedding_per_topic.png", dpi=120)
        written.append("embedding_per_topic.png")
    plt.close("all")
    return written


def write_report(root: Path, out: Path) -> Path:
    evaluate = read_json(root / "metrics/evaluate.json")
    if evaluate is None:
        from hiwar.errors import HiwarError

        raise HiwarError("metrics/evaluate.json: not found (run `dvc repro evaluate` first)")
    train = {p.stem: read_json(p) for p in (root / "metrics/train").glob("*.json")}
    ratings = read_json(root / "metrics/rating.json", {"status": "not rated"})
    out.mkdir(parents=True, exist_ok=True)
    images = charts(root / "plots/evaluate", out)
    text = [
        "# hiwar evaluation report", "",
        f"Test split: {evaluate['test_conversations']} conversations, {evaluate['assistant_turns']} assistant turns. "
        f"Embedding baseline b (random reference pairs) = {evaluate['embedding_baseline']}; rescaled = (s - b) / (1 - b).",
        "", table(evaluate, train, ratings), "",
        "Perplexity compares a base model with its fine-tuned self only (tokenizers differ). The embedding score "
        "is hiwar's reconstruction of the paper's RAVEN (its definition is not available); its values are not "
        "comparable with the paper's.", "",
        f"Human ratings: {ratings.get('status', 'not rated')}.", "",
        *training_data_section(train),
        *generation_section(read_json(root / "metrics/generate.json", {}), read_json(root / "logs/runs/generate.json", {})),
        *[f"![{name}]({name})" for name in images],
    ]
    path = out / "report.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path
