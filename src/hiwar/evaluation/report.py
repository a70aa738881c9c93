"""`hiwar report`: the evaluation as the paper reports it, a Markdown table plus PNG charts.

Perplexity is shown per model family only (base vs its fine-tuned self): tokenizers differ, so it is never
ranked across families. The embedding score and chrF need no tokenizer and compare across all rows.
"""

from __future__ import annotations

from pathlib import Path

from hiwar.io import read_json, run_log_path
from hiwar.paths import project_path


def _ci(values) -> str:
    return f"[{values[0]:.3f}, {values[1]:.3f}]"


def table(evaluate: dict, train: dict[str, dict], ratings: dict) -> str:
    human = ratings.get("models", {}) if ratings.get("status") == "rated" else {}
    lines = ["| model | variant | method | perplexity (within model) | embedding score [95% CI] | rescaled [95% CI] "
             "| chrF | human score [95% CI] |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [(name, kind, scores) for group in ("models", "baselines")
            for name, kinds in evaluate.get(group, {}).items() for kind, scores in kinds.items()
            if kind != "finetuned_minus_base"]  # the paired comparison has its own table
    for name, kind, s in rows:
        method = train.get(name, {}).get("method", "-") if kind == "finetuned" else "-"
        rated = human.get(f"{name}_{kind}")
        human_cell = f"{rated['mean_score']:.2f} {_ci(rated['mean_score_ci95'])}" if rated else "not rated"
        lines.append(f"| {name} | {kind} | {method} | {s['perplexity']:.2f} | {s['embedding_score']:.3f} "
                     f"{_ci(s['embedding_score_ci95'])} | {s['embedding_score_rescaled']:.3f} "
                     f"{_ci(s['embedding_score_rescaled_ci95'])} | {s['chrf']:.1f} | {human_cell} |")
    return "\n".join(lines)


def paired_table(evaluate: dict) -> list[str]:
    """Fine-tuned minus base on the same turns: difference, 95% CI (conversations resampled), p-value."""
    rows = [(name, kinds["finetuned_minus_base"]) for name, kinds in evaluate.get("models", {}).items()
            if "finetuned_minus_base" in kinds]
    if not rows:
        return []
    lines = ["## Fine-tuned vs base, paired on the same turns", "",
             "Perplexity as the ratio fine-tuned / base (below 1: fine-tuning lowered it), on all assistant tokens "
             "and on text tokens only (without the role and end markers); the embedding score and chrF as "
             "differences. 95% intervals resample conversations; p-values come from a permutation test that "
             "swaps base and fine-tuned within conversations.", "",
             "| model | perplexity ratio [95% CI] (p) | text-only ratio [95% CI] (p) | embedding score diff [95% CI] (p) "
             "| chrF diff [95% CI] (p) |", "| --- | --- | --- | --- | --- |"]
    for name, d in rows:
        cells = []
        for key, value, ci in (("perplexity", "ratio", "ratio_ci95"), ("perplexity_text", "ratio", "ratio_ci95"),
                               ("embedding_score", "difference", "ci95"), ("chrf", "difference", "ci95")):
            e = d.get(key)
            cells.append(f"{e[value]:.3f} {_ci(e[ci])} (p={e['p_value']:.3g})" if e else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


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


def judge_section(judge: dict, compare: dict) -> list[str]:
    """The LLM judge's results, or "not judged": a score is shown only where a judge gave it."""
    lines = ["## LLM judge", ""]
    if judge.get("status") != "judged":
        lines += ["Dataset: not judged (no judge configured: judge.backend is none; see docs/judge.md).", ""]
    else:
        means = ", ".join(f"{c} {v['mean']:.2f}" for c, v in judge["scores"].items() if v["mean"] is not None)
        gate = judge["gate"]
        lines += [f"Dataset: {judge['judged']} of {judge['conversations']} conversations judged by {judge['judge']} "
                  f"({judge['failed']} judge failures, {judge['malformed_answers']} malformed answers asked again); "
                  f"mean scores: {means}.", ""]
        if gate["min_score"] is not None:
            lines += [f"Gate (every criterion at least {gate['min_score']}): {gate['kept']} kept, {gate['rejected']} "
                      f"rejected (data/judge/rejected.parquet).", ""]
    if compare.get("status") != "judged":
        return lines + ["Model comparison and agreement with people: not judged.", ""]
    pairwise = compare.get("pairwise")
    if isinstance(pairwise, dict):
        bias = pairwise["position_bias_rate"]
        lines += [f"Pairwise, each item judged in both orders ({pairwise['judged']} of {pairwise['items']} items; "
                  f"position bias: the verdict flips with the order on "
                  f"{'-' if bias is None else f'{bias:.1%}'} of items, and such items count as ties).", "",
                  "| pair (first vs second) | first wins | ties | second wins | first's win share [95% CI] |", "| --- | --- | --- | --- | --- |"]
        for name, p in pairwise["pairs"].items():
            lines.append(f"| {name} | {p['wins']} | {p['ties']} | {p['losses']} | {p['win_share']:.2f} "
                         f"{_ci(p['win_share_ci95'])} |")
        lines.append("")
    else:
        lines += [f"Pairwise: {pairwise}.", ""]
    agreement = compare.get("agreement")
    lines += [f"Judge vs people: {agreement['verdict'] if isinstance(agreement, dict) else agreement}.", ""]
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


def _varieties(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("conversations", "dialect_share"))


def quality_section(quality: dict) -> list[str]:
    """The dataset's quality in brief (metrics/quality.json; the full card is data/quality/README.md)."""
    if not quality:
        return []
    d, f, c, x = quality["diversity"], quality["fidelity"], quality["coverage"], quality["contamination"]
    test = ", ".join(f"{v} share a {k.split('_')[-1].replace('gram', '-gram')}" for k, v in x["test"].items()
                     if k.startswith("train_conversations_"))
    return ["## Dataset quality", "",
            "| distinct-1 / 2 / 3 | self-BLEU | dispersion | shared openings | topic top-1 / top-5 | country named "
            "| empty cells | Gini topic / country |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {d['distinct_1']} / {d['distinct_2']} / {d['distinct_3']} | {d['self_bleu']} | "
            f"{d['embedding_dispersion']} | {d['shared_opening_share']} | {f['topic_top1']} / {f['topic_top5']} | "
            f"{f['country_mention']} | {c['cells_empty']} of {c['cells_requested']} | "
            f"{c['gini_topic']} / {c['gini_country']} |", "",
            *([f"Arabic variety of the kept conversations: {_varieties(quality['variety']['all'])} (dialect share "
               f"{quality['variety']['all']['dialect_share']}; per requested country in data/quality/README.md).", ""]
              if quality.get("variety") else []),
            f"Contamination, train vs test: {test}; removed from train: {x['train_removed']}. "
            "What these figures do and do not say: docs/quality.md; per topic and country: `dvc plots show`.", ""]


def topup_section(topup: dict) -> list[str]:
    """The top-up rounds (metrics/topup.json): extra requests and tokens per round, cells at quota before and
    after, and the cells still short, plainly."""
    if not topup:
        return []
    if topup["status"] == "off":
        return ["## Top-up rounds", "", f"Off (topup.quota {topup['quota']}, max_rounds {topup['max_rounds']}): "
                "every cell got its first-round requests only.", ""]
    short = topup["shortfall"]
    lines = ["## Top-up rounds", "",
             f"Quota {topup['quota']} kept conversation(s) per cell. Cells at quota: "
             f"{topup['cells_at_quota']['before']} -> {topup['cells_at_quota']['after']} of {topup['cells']}; with a "
             f"kept conversation: {topup['cells_with_kept']['before']} -> {topup['cells_with_kept']['after']}; kept "
             f"conversations {topup['kept_conversations']['before']} -> {topup['kept_conversations']['after']}. Extra "
             f"requests {topup['extra_requests']} of a budget of {topup['budget_requests']} ({topup['extra_share']:.0%} "
             f"of the first round's {topup['first_round_requests']}); stopped: {topup['stopped']}.", "",
             "| round | cells short before | cells asked | requests | failed | tokens in / out | kept | rejected "
             "| cells short after |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['round']} | {r['cells_short_before']} | {r['cells_asked']} | {r['requests']} | {r['failed']} | "
              f"{r['tokens_in']} / {r['tokens_out']} | {r['kept']} | {r['rejected']} | {r['cells_short_after']} |"
              for r in topup["rounds"]]
    why = ", ".join(f"{k} {v}" for k, v in short["why"].items()) or "none"
    reasons = ", ".join(f"{k} {v}" for k, v in list(short["first_reasons"].items())[:5]) or "none"
    return lines + ["", f"**Shortfall: {short['cells']} cells are still below quota** ({short['missing_conversations']} "
                    f"conversations missing). Why: {why}. What cleaning rejected in them: {reasons}. Every short cell "
                    "with its rounds and reasons: the top-up stage's shortfall file (dvc.yaml).", ""]


def scope(evaluate: dict) -> str:
    n, total = evaluate["test_conversations"], evaluate.get("test_conversations_total", evaluate["test_conversations"])
    return f"{n} conversations" if n == total else f"{n} of {total} conversations (capped by evaluate.max_conversations)"


def write_report(root: Path, out: Path) -> Path:
    """reports/report.md from the metrics and plot data of the project at `root` (folders as its dvc.yaml names
    them)."""
    metrics, plots = project_path("metrics", root), project_path("plots", root)
    evaluate = read_json(metrics / "evaluate.json")
    if evaluate is None:
        from hiwar.errors import HiwarError

        raise HiwarError(f"{metrics / 'evaluate.json'}: not found (run `dvc repro evaluate` first)")
    train = {p.stem: read_json(p) for p in (metrics / "train").glob("*.json")}
    ratings = read_json(metrics / "rating.json", {"status": "not rated"})
    out.mkdir(parents=True, exist_ok=True)
    images = charts(plots / "evaluate", out)
    text = [
        "# hiwar evaluation report", "",
        f"Test split: {scope(evaluate)}, {evaluate['assistant_turns']} assistant turns. "
        f"Embedding baseline b (random pairs of references from different conversations"
        f"{', ' + str(evaluate['embedding_baseline_pairs']) + ' pairs' if 'embedding_baseline_pairs' in evaluate else ''}) = "
        f"{evaluate['embedding_baseline']}"
        f"{' ' + _ci(evaluate['embedding_baseline_ci95']) if 'embedding_baseline_ci95' in evaluate else ''}; "
        "rescaled = (s - b) / (1 - b). Intervals resample conversations.",
        "", table(evaluate, train, ratings), "", *paired_table(evaluate),
        "Perplexity compares a base model with its fine-tuned self only (tokenizers differ). The embedding score "
        "is hiwar's reconstruction of the paper's RAVEN (its definition is not available); its values are not "
        "comparable with the paper's.", "",
        f"Human ratings: {ratings.get('status', 'not rated')}.", "",
        *training_data_section(train),
        *generation_section(read_json(metrics / "generate.json", {}),
                            read_json(root / run_log_path("runs/generate.json"), {})),
        *judge_section(read_json(metrics / "judge.json", {"status": "not judged"}),
                       read_json(metrics / "judge_compare.json", {"status": "not judged"})),
        *topup_section(read_json(metrics / "topup.json", {})),
        *quality_section(read_json(metrics / "quality.json", {})),
        *[f"![{name}]({name})" for name in images],
    ]
    path = out / "report.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path
