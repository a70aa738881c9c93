"""The comparison table: the params that differ among the rows shown (values keep their types), the key
metrics with their 95% CI where the metrics carry one (`<key>_ci95` beside `<key>`), the best value of each
in bold. Rendered as Markdown (compare.md), as a plain-text table that fits the terminal, and as CSV."""

from __future__ import annotations

import csv
import fnmatch
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hiwar.compare.rows import Row

KEY_METRICS = [
    "metrics/evaluate.json:models.*.finetuned.perplexity",
    "metrics/evaluate.json:models.*.finetuned.embedding_score_rescaled",
    "metrics/evaluate.json:models.*.finetuned.chrf",
    "metrics/train/*.json:eval_loss",
    "metrics/clean.json:kept",
]
LOWER_IS_BETTER = re.compile(r"perplexity|ppl|loss|nll", re.IGNORECASE)
MISSING = "–"


@dataclass
class Metric:
    column: str  # "file:key"
    label: str  # short name for headers and chart panels
    lower_is_better: bool
    values: list  # one per row: float or None
    cis: list  # one per row: (low, high) or None

    @property
    def best(self):
        present = [v for v in self.values if v is not None]
        if len(set(present)) < 2:
            return None  # nothing to compare against, or all equal
        return min(present) if self.lower_is_better else max(present)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def changed_params(rows: list[Row]) -> tuple[list[str], list[str]]:
    """(keys whose values differ among the rows that have them; keys with one value that some rows lack,
    params added or renamed along the history, which a note names instead of a column of dashes)."""
    keys = list(dict.fromkeys(k for r in rows for k in r.params))
    differ, partial = [], []
    for key in keys:
        values = {json.dumps(r.params[key], sort_keys=True) for r in rows if key in r.params}
        if len(values) > 1:
            differ.append(key)
        elif any(key not in r.params for r in rows):
            partial.append(key)
    return differ, partial


def metric_label(column: str) -> str:
    """metrics/evaluate.json:models.m.finetuned.chrf -> "m finetuned chrf"; metrics/train/m.json:eval_loss
    -> "m eval_loss"; metrics/clean.json:kept -> "clean kept"."""
    file, _, key = column.partition(":")
    stem = Path(file).stem
    if key.startswith("models."):
        return key.removeprefix("models.").replace(".", " ")
    return f"{stem} {key}"


def metrics_of(rows: list[Row], patterns: list[str]) -> list[Metric]:
    """The numeric metrics matching the glob patterns ('file:key'), in the order of the patterns."""
    columns = list(dict.fromkeys(c for r in rows for c in r.metrics))
    out = []
    for pattern in patterns:
        for column in columns:
            if (column.endswith("_ci95") or not fnmatch.fnmatch(column, pattern)
                    or any(m.column == column for m in out)):
                continue
            values = [r.metrics.get(column) if _number(r.metrics.get(column)) else None for r in rows]
            if all(v is None for v in values):
                continue
            cis = []
            for r in rows:
                ci = r.metrics.get(column + "_ci95")
                cis.append(tuple(ci) if isinstance(ci, list) and len(ci) == 2 and all(map(_number, ci)) else None)
            out.append(Metric(column, metric_label(column), bool(LOWER_IS_BETTER.search(column)), values, cis))
    return out


def param_text(value) -> str:
    """Typed: 20 stays 20, 0.002 stays 0.002, True is true, lists and dicts are JSON."""
    if value is MISSING or value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


def metric_text(value, ci=None) -> str:
    if value is None:
        return MISSING
    text = str(value) if isinstance(value, int) else f"{value:.4g}"
    return f"{text} [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else text


def direction_note(metrics: list[Metric], best: str = "in bold") -> str:
    lower = [m.label.split()[-1] for m in metrics if m.lower_is_better]
    higher = [m.label.split()[-1] for m in metrics if not m.lower_is_better]
    parts = []
    if lower:
        parts.append(f"lower is better for {', '.join(dict.fromkeys(lower))}")
    if higher:
        parts.append(f"higher is better for {', '.join(dict.fromkeys(higher))}")
    return f"Best of each metric {best}; " + "; ".join(parts) + ". Brackets: 95% CI."


def cells(rows: list[Row], params: list[str], metrics: list[Metric], bold=lambda s: f"**{s}**",
          intervals: bool = True) -> list[list[str]]:
    table = []
    for i, row in enumerate(rows):
        line = [row.label, *(param_text(row.params.get(p, MISSING)) for p in params)]
        for m in metrics:
            text = metric_text(m.values[i], m.cis[i] if intervals else None)
            line.append(bold(text) if m.values[i] is not None and m.values[i] == m.best else text)
        table.append(line)
    return table


def headers(params: list[str], metrics: list[Metric]) -> list[str]:
    return ["experiment", *params, *(m.label for m in metrics)]


def markdown(rows: list[Row], params: list[str], metrics: list[Metric]) -> str:
    head = headers(params, metrics)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(line) + " |" for line in cells(rows, params, metrics)]
    return "\n".join(lines) + "\n\n" + direction_note(metrics) + "\n"


def wrap(header: str, width: int = 12) -> list[str]:
    """A header over several short lines, broken after spaces, dots and underscores."""
    lines = [""]
    for piece in re.findall(r"[^_ .]+[_ .]?|[_ .]", header):
        if lines[-1] and len(lines[-1] + piece.rstrip()) > width:
            lines.append("")
        lines[-1] += piece
    return [line.rstrip() for line in lines]


def text_table(rows: list[Row], params: list[str], metrics: list[Metric], width: int | None = None) -> str:
    """A plain table for the terminal, best values marked with *, without the CIs (compare.md and the page
    have them). Headers wrap; when the rows are still too wide for the terminal the table is turned (one
    line per column, one column per row), in chunks."""
    width = width or shutil.get_terminal_size((120, 40)).columns
    head = [wrap(h) for h in headers(params, metrics)]
    body = cells(rows, params, metrics, bold=lambda s: f"*{s}", intervals=False)

    def render(head_lines: list[list[str]], body: list[list[str]]) -> list[str]:
        widths = [max([len(w) for w in h] + [len(r[i]) for r in body]) for i, h in enumerate(head_lines)]
        depth = max(len(h) for h in head_lines)
        out = ["  ".join((h[d] if d < len(h) else "").ljust(w) for h, w in zip(head_lines, widths)).rstrip()
               for d in range(depth)]
        out.append("  ".join("-" * w for w in widths))
        return out + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]

    lines = render(head, body)
    if max(map(len, lines)) <= width:
        return "\n".join(lines)
    names = headers(params, metrics)[1:]
    label_width = max(map(len, names))
    chunks, chunk, used = [], [], label_width
    for i, row in enumerate(rows):
        size = 2 + max(len(cell) for cell in [row.label, *body[i][1:]])
        if chunk and used + size > width:
            chunks.append(chunk)
            chunk, used = [], label_width
        chunk.append(i)
        used += size
    chunks.append(chunk)
    blocks = []
    for chunk in chunks:
        turned_head = [[""]] + [[rows[i].label] for i in chunk]
        turned = [[name] + [body[i][c + 1] for i in chunk] for c, name in enumerate(names)]
        blocks.append("\n".join(render(turned_head, turned)))
    return "\n\n".join(blocks)


def write_csv(path: Path, rows: list[Row], params: list[str], metrics: list[Metric]) -> None:
    from hiwar.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["experiment", "rev", "kind", "baseline", *params,
                      *(c for m in metrics for c in (m.column, f"{m.column}_ci95_low", f"{m.column}_ci95_high"))])
        for i, row in enumerate(rows):
            values = [row.name, row.rev, row.kind, row.baseline or "", *(param_text(row.params.get(p, MISSING))
                                                                          for p in params)]
            for m in metrics:
                ci = m.cis[i] or ("", "")
                values += ["" if m.values[i] is None else m.values[i], *ci]
            out.writerow(values)
