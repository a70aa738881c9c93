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
    shutil.copytree(root / "data/seed", tmp_path / "data/seed")
    shutil.copy(root / "params.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["grid", "show", "-n", "2", "--template", "jais"])
    assert result.exit_code == 0, result.output
    assert result.output.count("### Instruction:") == 2 and "240 conversations" in result.output
