"""Data paths are named once, in dvc.yaml's `vars: paths`: stage commands pass them to the scripts, the rest of
hiwar reads them through hiwar.paths, and switching what fine-tuning trains on is one line."""

import importlib.util
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from hiwar.errors import HiwarError
from hiwar.paths import project_path, relative_paths

ROOT = Path(__file__).resolve().parents[1]


def stage_commands() -> dict[str, str]:
    """Stage name -> its command with every ${...} left in, foreach stages by their template."""
    config = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    return {name: stage.get("do", stage)["cmd"] for name, stage in config["stages"].items()}


def script_command(script: Path) -> click.Command:
    spec = importlib.util.spec_from_file_location(f"stage_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("name", sorted(stage_commands()))
def test_every_option_a_stage_script_requires_is_passed_by_its_command(name):
    words = shlex.split(stage_commands()[name])
    script = ROOT / next(w for w in words if w.startswith("stages/"))
    command = script_command(script)
    if isinstance(command, click.Group):  # stages/judge.py score|compare
        command = command.commands[words[words.index(script.relative_to(ROOT).as_posix()) + 1]]
    required = {opt for p in command.params if isinstance(p, click.Option) and p.required for opt in p.opts}
    given = {w for w in words if w.startswith("--")}
    assert required <= given, f"{name}: dvc.yaml does not pass {sorted(required - given)}"
    assert given <= {opt for p in command.params for opt in p.opts}, f"{name}: passes options the script lacks"


def test_paths_come_from_the_projects_dvc_yaml(tmp_path):
    (tmp_path / "dvc.yaml").write_text("vars:\n  - paths:\n      clean: elsewhere/kept.parquet\nstages: {}\n")
    (tmp_path / "sub").mkdir()
    assert project_path("clean", tmp_path / "sub") == tmp_path / "elsewhere/kept.parquet"
    assert relative_paths(tmp_path) == {"clean": "elsewhere/kept.parquet"}
    with pytest.raises(HiwarError, match=r"vars: paths: no `raw` \(expected one of: clean\)"):
        project_path("raw", tmp_path)


def test_the_committed_paths_are_the_stages_outputs():
    paths = relative_paths(ROOT)
    assert paths["clean"] == "data/clean/conversations.parquet" and paths["train"] == "data/split/train.parquet"


@pytest.mark.slow
def test_fine_tuning_on_the_decontaminated_train_set_is_a_one_line_switch(tmp_path):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    dvc_yaml = tmp_path / "dvc.yaml"
    text = dvc_yaml.read_text(encoding="utf-8")
    switched = text.replace("      train: data/split/train.parquet", "      train: data/quality/train.parquet")
    assert len(switched.splitlines()) == len(text.splitlines()) and switched != text
    dvc_yaml.write_text(switched, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    # DVC's own graph, not ours: which stages does fine-tuning now wait for?
    probe = ("from dvc.repo import Repo\nr = Repo('.')\n"
             "s = next(s for s in r.index.stages if s.addressing == 'finetune@tiny_arabiangpt')\n"
             "print(sorted(x.addressing for x in r.index.graph.successors(s)))\nprint(s.cmd)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True)
    upstream, cmd = out.stdout.strip().splitlines()
    assert "'quality'" in upstream
    assert "--train data/quality/train.parquet" in cmd


def test_a_project_whose_dvc_yaml_names_no_paths_reads_the_default_layout(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  train:\n    cmd: python train.py\n")
    assert relative_paths(tmp_path) == relative_paths(ROOT)
    assert project_path("clean", tmp_path) == tmp_path / "data/clean/conversations.parquet"
