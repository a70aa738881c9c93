"""`hiwar compare`: experiments and git revisions side by side, from `dvc exp show --json`.

One row per commit and per experiment, the params that differ between them, and the key metrics with the
best value of each in bold; a PNG chart per metric. A metric is better lower when its name says perplexity, ppl,
loss or nll, higher otherwise.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pandas as pd

from hiwar.errors import HiwarError

KEY_METRICS = [
    "metrics/evaluate.json:models.*.finetuned.perplexity",
    "metrics/evaluate.json:models.*.finetuned.embedding_score_rescaled",
    "metrics/evaluate.json:models.*.finetuned.chrf",
    "metrics/train/*.json:eval_loss",
    "metrics/clean.json:kept",
]
LOWER_IS_BETTER = re.compile(r"perplexity|ppl|loss|nll", re.IGNORECASE)


def _flatten(data, prefix: str = "") -> dict:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _row(entry: dict, kind: str, baseline: str | None) -> dict:
    data = entry.get("data") or {}
    row = {"name": entry.get("name") or str(entry["rev"])[:7], "rev": str(entry["rev"])[:7], "kind": kind,
           "baseline": baseline, "timestamp": data.get("timestamp")}
    for file, content in (data.get("params") or {}).items():
        row.update({f"param:{k}": v for k, v in _flatten((content or {}).get("data", {})).items()})
    for file, content in (data.get("metrics") or {}).items():
        row.update({f"{file}:{k}": v for k, v in _flatten((content or {}).get("data", {})).items()})
    return row


def experiments_table(exp_show: list[dict]) -> pd.DataFrame:
    """Flatten `dvc exp show --json` into one row per commit and per experiment."""
    rows = []
    for commit in exp_show:
        if commit.get("rev") == "workspace":
            continue
        name = commit.get("name") or str(commit["rev"])[:7]
        rows.append(_row(commit, "commit", None))
        for group in commit.get("experiments") or []:
            for entry in group.get("revs") or []:
                if entry.get("data") and not entry.get("error"):
                    rows.append(_row(entry, "experiment", name))
    if not rows:
        raise HiwarError("dvc exp show: no commits or experiments to compare (commit, or `dvc exp run`, first)")
    return pd.DataFrame(rows)


def key_columns(frame: pd.DataFrame, patterns: list[str]) -> list[str]:
    metrics = [c for c in frame.columns if ":" in c and not c.startswith("param:")]
    chosen = [c for c in metrics if any(fnmatch.fnmatch(c, p) for p in patterns)]
    return [c for c in chosen if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()]


def changed_params(frame: pd.DataFrame) -> list[str]:
    params = [c for c in frame.columns if c.startswith("param:")]
    return [c for c in params if frame[c].astype(str).nunique(dropna=False) > 1]


def _short(column: str) -> str:
    file, _, key = column.partition(":")
    return key if file == "param" else f"{Path(file).stem}: {key}"


def markdown(frame: pd.DataFrame, metrics: list[str], params: list[str]) -> str:
    header = ["experiment", "kind", *map(_short, params), *map(_short, metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    best = {m: (frame[m].min() if LOWER_IS_BETTER.search(m) else frame[m].max()) for m in metrics}
    for _, row in frame.iterrows():
        label = row["name"] if row["kind"] == "commit" else f"{row['name']} (on {row['baseline']})"
        cells = [label, row["kind"], *(str(row[p]) for p in params)]
        for m in metrics:
            value = row[m]
            text = "-" if pd.isna(value) else f"{value:.4g}"
            cells.append(f"**{text}**" if not pd.isna(value) and value == best[m] and len(frame) > 1 else text)
        lines.append("| " + " | ".join(cells) + " |")
    arrows = ", ".join(f"{_short(m)} {'lower' if LOWER_IS_BETTER.search(m) else 'higher'}" for m in metrics)
    return "\n".join(lines) + f"\n\nBest in bold; better is: {arrows}.\n"


def charts(frame: pd.DataFrame, metrics: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    labels = [n if k == "commit" else f"{n}\n(exp)" for n, k in zip(frame["name"], frame["kind"])]
    for m in metrics:
        fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(frame)), 3.2))
        colors = ["#4c72b0" if k == "commit" else "#dd8452" for k in frame["kind"]]
        ax.bar(range(len(frame)), frame[m].astype(float), color=colors)
        ax.set_xticks(range(len(frame)), labels, fontsize=8)
        ax.set_title(f"{_short(m)} ({'lower' if LOWER_IS_BETTER.search(m) else 'higher'} is better)", fontsize=9)
        fig.tight_layout()
        path = out / (re.sub(r"[^A-Za-z0-9_.-]+", "_", _short(m)).strip("_") + ".png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def dvc_exp_show(all_commits: bool, revs: list[str]) -> list[dict]:
    from hiwar.remote import run

    return json.loads(run(["dvc", "exp", "show", "--json", *(["-A"] if all_commits else []),
                           *(a for r in revs for a in ("--rev", r))]))


def write_comparison(exp_show: list[dict], out: Path, patterns: list[str] = KEY_METRICS) -> Path:
    frame = experiments_table(exp_show)
    metrics = key_columns(frame, patterns)
    if not metrics:
        raise HiwarError(f"no metric matches {', '.join(patterns)} (expected keys like "
                         "metrics/evaluate.json:models.<model>.finetuned.perplexity)")
    params = changed_params(frame)
    out.mkdir(parents=True, exist_ok=True)
    pngs = charts(frame, metrics, out)
    text = ["# Experiments compared", "", markdown(frame, metrics, params), ""]
    text += [f"![{p.stem}]({p.name})" for p in pngs]
    path = out / "compare.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    frame.to_csv(out / "compare.csv", index=False)
    return path
