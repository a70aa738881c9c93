"""reports/compare/index.html: one self-contained file (inline CSS, the chart as a PNG data URI, no script,
nothing fetched) that opens from disk and can be attached to a pull request or a release. The table, the
chart, the quality report's metrics where the quality stage has run, and the sample replies right to left."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import jinja2

from hiwar.compare.rows import Row
from hiwar.compare.samples import Samples
from hiwar.compare.table import MISSING, Metric, direction_note, metric_text, param_text
from hiwar.paths import relative_paths


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hiwar: experiments compared</title>
<style>
body { font-family: system-ui, "Noto Sans", "Noto Naskh Arabic", "DejaVu Sans", sans-serif; margin: 1.5rem auto;
       max-width: 1540px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ci { color: #666; font-size: 0.8em; } .best { font-weight: 700; }
.note { color: #555; font-size: 0.9rem; } .chart { max-width: 100%; height: auto; }
.turn { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 0.9rem; margin: 1rem 0; }
.history { font-size: 0.9rem; color: #444; margin: 0.3rem 0 0.6rem; }
.replies { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 0.6rem; }
.reply { border: 1px solid #e3e3e8; border-radius: 6px; padding: 0.45rem 0.6rem; background: #fafafa; }
.reply.reference { background: #eef6ee; } .reply h3 { font-size: 0.8rem; margin: 0 0 0.25rem; color: #555; }
[dir="rtl"] { text-align: right; } .ar { font-size: 1.05rem; }
</style>
</head>
<body>
<h1>Experiments compared</h1>
<p class="note">{{ rows|length }} rows, written {{ written }} by <code>hiwar compare</code>.
{{ direction }}</p>
{% for note in notes %}<p class="note">{{ note }}</p>{% endfor %}

<h2>Params that differ, and key metrics</h2>
<table id="compare-table">
<thead><tr><th>experiment</th><th>kind</th>{% for p in params %}<th>{{ p }}</th>{% endfor %}
{% for m in metrics %}<th>{{ m.label }} {{ "↓" if m.lower_is_better else "↑" }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in table %}<tr><td><bdi>{{ row.label }}</bdi></td><td>{{ row.kind }}</td>
{% for v in row.params %}<td><bdi>{{ v }}</bdi></td>{% endfor %}
{% for v, ci, best in row.metrics %}<td class="num{{ ' best' if best }}">{{ v }}{% if ci %} <span class="ci">{{ ci }}</span>{% endif %}</td>{% endfor %}
</tr>{% endfor %}
</tbody>
</table>

<h2>Charts</h2>
<p class="note">One panel per metric; bars are 95% confidence intervals where the metrics carry one; the best
value has a black outline.</p>
<img class="chart" alt="One panel per metric, one line per experiment" src="data:image/png;base64,{{ chart }}">

{% if quality %}
<h2>Quality report</h2>
<table id="quality-table">
<thead><tr><th>metric</th>{% for label in quality.labels %}<th><bdi>{{ label }}</bdi></th>{% endfor %}</tr></thead>
<tbody>{% for key, values in quality.lines %}<tr><td>{{ key }}</td>{% for v in values %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table>
{% endif %}

<h2>Replies to the same test turns</h2>
{% if samples.turns %}
<p class="note">Fine-tuned model <code>{{ samples.model }}</code>; the reference first (on the right), then each row's reply.</p>
{% for turn in samples.turns %}
<section class="turn" lang="ar" dir="rtl">
<div class="history">{% for message in turn.history[-3:] %}<p><b>{{ "المستخدم" if message.role == "user" else "المساعد" }}:</b> <span dir="auto">{{ message.content }}</span></p>{% endfor %}</div>
<div class="replies">
<div class="reply reference"><h3>المرجع</h3><p class="ar" dir="auto">{{ turn.reference }}</p></div>
{% for label, reply in turn.replies.items() %}<div class="reply"><h3><bdi dir="ltr">{{ label }}</bdi></h3><p class="ar" dir="auto">{{ reply if reply is not none else "—" }}</p></div>
{% endfor %}</div>
</section>
{% endfor %}
{% else %}<p class="note">No replies to show.</p>{% endif %}
{% for line in samples.missing %}<p class="note">{{ line }}</p>{% endfor %}
</body>
</html>
"""


def quality_table(rows: list[Row]) -> dict | None:
    """The numeric keys of metrics/quality.json, one column per row that has them; None when no row does."""
    quality = f"{relative_paths()['metrics']}/quality.json:"  # how DVC names its keys
    having = [r for r in rows if any(k.startswith(quality) for k in r.metrics)]
    if not having:
        return None
    keys = list(dict.fromkeys(k for r in having for k, v in r.metrics.items() if k.startswith(quality)
                              and isinstance(v, (int, float)) and not isinstance(v, bool)))
    return {"labels": [r.label for r in having],
            "lines": [(k.partition(":")[2], [metric_text(r.metrics.get(k)) for r in having]) for k in keys]}


def render(rows: list[Row], params: list[str], metrics: list[Metric], chart_png: bytes, samples: Samples,
           notes: list[str]) -> str:
    table = []
    for i, row in enumerate(rows):
        table.append({"label": row.label, "kind": row.kind,
                      "params": [param_text(row.params.get(p, MISSING)) for p in params],
                      "metrics": [(metric_text(m.values[i]),
                                   f"[{metric_text(m.cis[i][0])}, {metric_text(m.cis[i][1])}]" if m.cis[i] else "",
                                   m.values[i] is not None and m.values[i] == m.best) for m in metrics]})
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(TEMPLATE).render(
        rows=rows, params=params, metrics=metrics, table=table, notes=notes, samples=samples,
        chart=base64.b64encode(chart_png).decode("ascii"), quality=quality_table(rows),
        direction=direction_note(metrics).replace("**", ""),
        written=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
