import shutil

from click.testing import CliRunner

from hiwar.cli import main


def test_help_names_the_pipeline():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "dvc repro" in result.output


def test_params_check_passes_on_defaults_and_fails_with_one_line(tmp_path, root, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(main, ["params", "check", "--file", str(root / "params.yaml")]).exit_code == 0
    bad = tmp_path / "params.yaml"
    bad.write_text((root / "params.yaml").read_text(encoding="utf-8").replace("  seed: 13", "  seed: thirteen"),
                   encoding="utf-8")
    result = runner.invoke(main, ["params", "check", "--file", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {bad}: grid.seed: Input should be a valid integer, got 'thirteen'"]


def test_grid_show_prints_rendered_prompts(tmp_path, root, monkeypatch):
    shutil.copytree(root / "data/bundled", tmp_path / "data/bundled")
    shutil.copy(root / "params.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["grid", "show", "-n", "2", "--template", "jais"])
    assert result.exit_code == 0, result.output
    assert result.output.count("### Instruction:") == 2 and "240 conversations" in result.output


def test_inspect_shows_kept_and_rejected_with_reasons(tmp_path, root):
    import pandas as pd

    from hiwar.cleaning import PROVENANCE, clean
    from hiwar.io import read_jsonl, write_parquet
    from hiwar.params import load_section

    corpus = read_jsonl(root / "tests/fixtures/raw_generations.jsonl")
    raw = pd.DataFrame([{c: None for c in PROVENANCE} | {"conversation_id": ex["id"], "topic": "t", "country": "EG",
                                                          "raw_text": ex["raw_text"], "finish_reason": ex["finish_reason"]}
                        for ex in corpus])
    kept, rejected, _ = clean(raw, load_section("clean", root / "params.yaml"))
    write_parquet(tmp_path / "conversations.parquet", kept)
    write_parquet(tmp_path / "rejected.parquet", rejected)
    result = CliRunner().invoke(main, ["inspect", "--dir", str(tmp_path), "--kept", "1", "--rejected", "2",
                                       "--reason", "refusal", "--rtl", "plain"])
    assert result.exit_code == 0, result.output
    headers = [line for line in result.output.splitlines() if line.startswith("--- ") and "reasons:" in line]
    assert "=== kept: showing 1 of" in result.output and len(headers) == 2
    assert all("refusal" in line.split("reasons:")[1] for line in headers)
    assert "المساعد: " in result.output
    isolated = CliRunner().invoke(main, ["inspect", "--dir", str(tmp_path), "--rtl", "isolate"])
    assert "\u2067المستخدم: " in isolated.output
