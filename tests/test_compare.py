"""`hiwar compare` on a saved `dvc exp show --json` (the real format, trimmed)."""

import json

from click.testing import CliRunner

from hiwar.cli import main
from hiwar.compare import experiments_table, write_comparison


def entry(rev, name, lr, ppl, score, kept=113):
    return {"rev": rev, "name": name, "error": None, "experiments": None, "data": {
        "rev": rev, "timestamp": "2026-11-28T00:00:00",
        "params": {"params.yaml": {"data": {"finetune": {"models": {"m": {"learning_rate": lr, "lora_r": 8}}}}}},
        "metrics": {
            "metrics/evaluate.json": {"data": {"models": {"m": {"finetuned": {
                "perplexity": ppl, "embedding_score_rescaled": score, "chrf": 5.0}}}}},
            "metrics/clean.json": {"data": {"kept": kept}},
        }}}


EXP_SHOW = [
    {**entry("workspace", None, 0.002, 1.0, 0.0), "rev": "workspace"},
    {**entry("a" * 40, "main", 0.001, 124.06, -0.083), "experiments": [
        {"revs": [entry("b" * 40, "lr-high", 0.002, 118.5, -0.05)], "executor": None, "name": "lr-high"},
        {"revs": [entry("c" * 40, "lr-low", 0.0005, 140.2, -0.12)], "executor": None, "name": "lr-low"},
    ]},
    entry("d" * 40, None, 0.001, 130.0, -0.1, kept=100),
]


def test_every_commit_and_experiment_becomes_one_row_and_the_workspace_none():
    frame = experiments_table(EXP_SHOW)
    assert list(frame["name"]) == ["main", "lr-high", "lr-low", "ddddddd"]
    assert list(frame["kind"]) == ["commit", "experiment", "experiment", "commit"]
    assert frame.loc[1, "baseline"] == "main"


def test_the_table_shows_changed_params_and_bolds_the_best_in_each_direction(tmp_path):
    path = write_comparison(EXP_SHOW, tmp_path)
    text = path.read_text()
    assert "finetune.models.m.learning_rate" in text and "lora_r" not in text  # only params that differ
    row = next(line for line in text.splitlines() if line.startswith("| lr-high"))
    assert "**118.5**" in row and "**-0.05**" in row  # lowest perplexity, highest score
    assert "| ddddddd | commit |" in text and "**113**" in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 4 and all((tmp_path / p).stat().st_size > 1000 for p in pngs)


def test_the_command_reads_a_saved_json_and_explains_a_metric_that_matches_nothing(tmp_path):
    saved = tmp_path / "exp.json"
    saved.write_text(json.dumps(EXP_SHOW))
    result = CliRunner().invoke(main, ["compare", "--json", str(saved), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "lr-low (on main)" in result.output and (tmp_path / "out/compare.md").is_file()
    result = CliRunner().invoke(main, ["compare", "--json", str(saved), "--metric", "nope:*"])
    assert result.exit_code == 2 and "no metric matches nope:*" in result.output
