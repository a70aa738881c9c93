"""`hiwar compare` on a saved `dvc exp show --json` (tests/fixtures/exp_show.json: the scratch project of
test_compare_experiments.py, three experiments on `main` that change train.lr and train.layers)."""

import copy
import json
import re
from io import BytesIO

import pandas as pd
import pytest
from click.testing import CliRunner

from hiwar.cli import main
from hiwar.compare import write_comparison
from hiwar.compare.charts import MAX_WIDTH_PX, small_multiples
from hiwar.compare.rows import add_intervals, parse_exp_show, select_rows
from hiwar.compare.samples import collect
from hiwar.compare.table import changed_params, markdown, metrics_of, text_table
from hiwar.errors import HiwarError

PATTERNS = ["metrics/evaluate.json:models.*.finetuned.*"]


@pytest.fixture
def exp_show(root):
    return json.loads((root / "tests/fixtures/exp_show.json").read_text(encoding="utf-8"))


def no_files(rev, path):
    return None


WORD = {"finetuned": "المضبوط", "base": "الأساسي"}


def replies_of(row, repo):
    """Each row's replies as the evaluate stage writes them, with a reply that names the row."""
    history = [{"role": "user", "content": "كيف أقضي يومًا في الرياض؟"}]
    return pd.DataFrame([{"turn": t, "conversation_id": "c1", "topic": "السفر", "turn_in_conversation": 1,
                          "history": history, "reference": "ابدأ بالمتحف الوطني.", "model": "toy",
                          "kind": kind, "reply": f"ردّ النموذج {WORD[kind]} في {row.name}، الدور {t}"} for t in range(6)
                         for kind in ("base", "finetuned")])


def test_default_rows_are_head_and_its_experiments_and_the_workspace_only_when_it_differs(exp_show):
    rows, skipped = parse_exp_show(exp_show)
    assert [r.kind for r in rows] == ["workspace", "commit", "experiment", "experiment", "experiment"]
    shown, notes = select_rows(rows, None, [], everything=False, limit=12)
    assert [r.label for r in shown] == ["main", "both (on main)", "deeper (on main)", "lr-high (on main)"]
    assert notes == ["workspace: same params and metrics as main, not shown"] and skipped == []
    changed = copy.deepcopy(exp_show)
    changed[0]["data"]["params"]["params.yaml"]["data"]["train"]["lr"] = 0.5
    shown, _ = select_rows(parse_exp_show(changed)[0], None, [], everything=False, limit=12)
    assert shown[0].kind == "workspace"


def test_only_params_that_differ_become_columns_and_keep_their_types(exp_show):
    rows, _ = select_rows(parse_exp_show(exp_show)[0], None, [], everything=False, limit=12)
    params, partial = changed_params(rows)
    assert sorted(params) == ["train.layers", "train.lr"] and partial == []
    assert all(type(r.params["train.layers"]) is int for r in rows)
    text = markdown(rows, params, metrics_of(rows, PATTERNS))
    deeper = next(line for line in text.splitlines() if line.startswith("| deeper"))
    assert "| 4 |" in deeper and "| 0.01 |" in deeper and "4.0" not in deeper


def test_best_in_bold_with_the_direction_stated_once_and_the_ci_beside_the_value(exp_show):
    rows, _ = select_rows(parse_exp_show(exp_show)[0], None, [], everything=False, limit=12)
    ci = {"models": {"toy": {"finetuned": {"embedding_score_rescaled_ci95": [0.17, 0.22]}}}}
    add_intervals(rows, lambda rev, path: json.dumps(ci) if rows[2].rev == rev else None)
    metrics = metrics_of(rows, PATTERNS)
    text = markdown(rows, changed_params(rows)[0], metrics)
    lines = {line.split(" |")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    assert "**89.33**" in lines["lr-high (on main)"]  # lowest perplexity
    assert "**0.19 [0.17, 0.22]**" in lines["deeper (on main)"]  # highest score, CI beside it
    assert "**5**" not in text  # chrF is equal everywhere: no best
    assert text.count("lower is better") == 1 and "lower is better for perplexity" in text


def test_the_row_limit_keeps_named_rows_and_says_what_it_left_out(exp_show):
    rows = parse_exp_show(exp_show)[0]
    shown, notes = select_rows(rows, None, ["lr-high"], everything=False, limit=2)
    assert [r.name for r in shown] == ["main", "lr-high"]
    assert "2 more rows left out by the row limit (both (on main), deeper (on main))" in notes[-1]
    with pytest.raises(HiwarError, match="no experiment, branch or commit called nope"):
        select_rows(rows, None, ["nope"], everything=False, limit=5)


def test_failed_and_queued_experiments_are_named_not_shown(exp_show, tmp_path):
    broken = copy.deepcopy(exp_show)
    group = broken[1]["experiments"][0]
    group["revs"][0]["data"], group["revs"][0]["error"] = None, {"msg": "stage train failed", "type": "x"}
    done = write_comparison(broken, tmp_path, PATTERNS, samples=0, read_file=no_files)
    assert "not shown, no results: both (on main): stage train failed" in done.notes
    assert [r.name for r in done.rows] == ["main", "deeper", "lr-high"]


def test_the_terminal_table_fits_its_width_and_turns_when_it_must(exp_show):
    rows, _ = select_rows(parse_exp_show(exp_show)[0], None, [], everything=False, limit=12)
    params, metrics = changed_params(rows)[0], metrics_of(rows, PATTERNS)
    wide = text_table(rows, params, metrics, width=120)
    assert max(map(len, wide.splitlines())) <= 120 and wide.splitlines()[-1].startswith("lr-high (on main)")
    narrow = text_table(rows, params, metrics, width=60)
    assert max(map(len, narrow.splitlines())) <= 60 and "train.layers" in narrow
    assert any(line.startswith("train.layers") for line in narrow.splitlines())  # turned: one line per column


def test_small_multiples_stay_within_a_screen_and_grow_with_the_rows(exp_show):
    from PIL import Image

    rows = parse_exp_show(exp_show)[0][1:]
    many = [copy.copy(rows[i % len(rows)]) for i in range(40)]
    metrics = metrics_of(rows, ["metrics/evaluate.json:*"]) * 3  # nine panels
    small = Image.open(BytesIO(small_multiples(rows, metrics_of(rows, PATTERNS)))).size
    big = Image.open(BytesIO(small_multiples(many, metrics_of(many, ["metrics/evaluate.json:*"]) * 3))).size
    assert small[0] <= MAX_WIDTH_PX and big[0] <= MAX_WIDTH_PX and big[1] > 2 * small[1]
    assert len(metrics) == 9


def test_samples_show_each_rows_finetuned_reply_to_the_same_turns(exp_show):
    rows, _ = select_rows(parse_exp_show(exp_show)[0], None, [], everything=False, limit=12)
    samples = collect(rows, count=3, reader=replies_of)
    assert [t["turn"] for t in samples.turns] == [0, 1, 2] and samples.model == "toy"
    assert samples.turns[1]["replies"]["deeper (on main)"] == "ردّ النموذج المضبوط في deeper، الدور 1"

    def fails_for_main(row, repo):
        if row.name == "main":
            raise FileNotFoundError("gone")
        return replies_of(row, repo)

    samples = collect(rows, count=2, reader=fails_for_main)
    assert "main" not in samples.turns[0]["replies"] and "for main:" in samples.missing[0]


def test_the_page_is_self_contained_and_arabic_runs_right_to_left(exp_show, tmp_path):
    done = write_comparison(exp_show, tmp_path, PATTERNS, reader=replies_of, read_file=no_files)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<script" not in page
    assert page.count('src="data:image/png;base64,') == 1
    assert page.count('<section class="turn" lang="ar" dir="rtl">') == 4 and "ردّ النموذج المضبوط في both، الدور 3" in page
    assert "الأساسي" not in page  # the fine-tuned model's replies only
    assert {p.name for p in tmp_path.iterdir()} == {"index.html", "compare.md", "compare.csv", "charts.png"}
    assert done.params == ["train.lr", "train.layers"]


def test_the_quality_reports_metrics_get_a_table_when_a_row_has_them(exp_show, tmp_path):
    with_quality = copy.deepcopy(exp_show)
    with_quality[1]["data"]["metrics"]["metrics/quality.json"] = {"data": {"duplicates": 3, "arabic_ratio": 0.97}}
    write_comparison(with_quality, tmp_path, PATTERNS, samples=0, read_file=no_files)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'id="quality-table"' in page and "arabic_ratio" in page
    write_comparison(exp_show, tmp_path, PATTERNS, samples=0, read_file=no_files)
    assert 'id="quality-table"' not in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_the_command_reads_a_saved_json_and_explains_a_metric_that_matches_nothing(root, tmp_path):
    saved = str(root / "tests/fixtures/exp_show.json")
    result = CliRunner().invoke(main, ["compare", "--json", saved, "--out", str(tmp_path / "out"), "--samples", "0"])
    assert result.exit_code == 0, result.output
    assert "lr-high (on main)" in result.output and "lower is better for perplexity" in result.output
    result = CliRunner().invoke(main, ["compare", "--json", saved, "--metric", "nope:*", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no metric matches nope:*" in result.output
