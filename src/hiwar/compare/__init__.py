"""`hiwar compare`: experiments and git revisions side by side.

rows.py picks the rows (from `dvc exp show --json`), table.py the columns and the Markdown/terminal/CSV
table, charts.py the small-multiples PNG, samples.py the replies to fixed test turns, page.py the static
HTML page. `write_comparison` puts them together in one output folder.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hiwar.compare.rows import Row, add_intervals, dvc_exp_show, parse_exp_show, read_at_rev, select_rows
from hiwar.compare.table import KEY_METRICS, changed_params, markdown, metrics_of, text_table, write_csv
from hiwar.errors import HiwarError

__all__ = ["KEY_METRICS", "Comparison", "dvc_exp_show", "write_comparison"]


@dataclass
class Comparison:
    rows: list[Row]
    params: list[str]
    notes: list[str]
    folder: Path
    text: str  # the table for the terminal


def write_comparison(exp_show: list[dict], out: Path, patterns: list[str] = KEY_METRICS, wanted: list[str] = (),
                     everything: bool = False, max_rows: int = 12, head: str | None = None, samples: int = 4,
                     model: str | None = None, repo: str = ".", reader=None,
                     read_file=read_at_rev) -> Comparison:
    """compare.md, compare.csv, charts.png and index.html in `out`."""
    from hiwar.compare.charts import small_multiples
    from hiwar.compare.page import render
    from hiwar.compare.samples import collect, read_replies
    from hiwar.io import atomic_path

    rows, skipped = parse_exp_show(exp_show)
    rows, notes = select_rows(rows, head, list(wanted), everything, max_rows)
    notes += [f"not shown, no results: {line}" for line in skipped]
    add_intervals(rows, read_file)
    metrics = metrics_of(rows, patterns)
    if not metrics:
        raise HiwarError(f"no metric matches {', '.join(patterns)} (expected keys like "
                         "metrics/evaluate.json:models.<model>.finetuned.perplexity)")
    params, partial = changed_params(rows)
    if len(rows) > 1 and not params:
        notes.append("no param differs among these rows")
    if partial:
        groups = Counter(k.split(".")[0] for k in partial)
        notes.append("params only some rows have (added or renamed along the way), not shown: "
                     + ", ".join(f"{g}.* ({n})" for g, n in groups.items()))
    chart = small_multiples(rows, metrics)
    replies = collect(rows, samples, model, repo, reader or read_replies)

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "charts.png") as tmp:
        tmp.write_bytes(chart)
    md = ["# Experiments compared", "", markdown(rows, params, metrics), *notes, "", "![charts](charts.png)", ""]
    with atomic_path(out / "compare.md") as tmp:
        tmp.write_text("\n".join(md), encoding="utf-8")
    write_csv(out / "compare.csv", rows, params, metrics)
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(render(rows, params, metrics, chart, replies, notes), encoding="utf-8")
    return Comparison(rows, params, notes + replies.missing, out, text_table(rows, params, metrics))
