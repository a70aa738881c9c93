import shutil
import subprocess
import sys

import pytest
import yaml

from hiwar.params import SECTIONS, ParamsError, check_all, load_section
from conftest import stage_command


def write(tmp_path, data):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_default_params_are_valid(root):
    assert check_all(root / "params.yaml") == []


def test_every_section_has_a_schema(params_data):
    assert set(params_data) == set(SECTIONS)


def test_unknown_key_is_named_with_the_expected_keys(tmp_path, params_data):
    data = dict(params_data, grid=dict(params_data["grid"], seeed=1))
    with pytest.raises(ParamsError, match=r"grid\.seeed: unknown key \(expected one of: seed, conversations"):
        load_section("grid", write(tmp_path, data))


def test_wrong_type_names_the_nested_key(tmp_path, params_data):
    models = {k: dict(v) for k, v in params_data["finetune"]["models"].items()}
    models["tiny_arabiangpt"]["epochs"] = "three"
    data = dict(params_data, finetune=dict(params_data["finetune"], models=models))
    with pytest.raises(ParamsError, match=r"finetune\.models\.tiny_arabiangpt\.epochs: .*got 'three'"):
        load_section("finetune", write(tmp_path, data))


def test_string_number_is_not_silently_accepted(tmp_path, params_data):
    data = dict(params_data, grid=dict(params_data["grid"], seed="13"))
    with pytest.raises(ParamsError, match=r"grid\.seed"):
        load_section("grid", write(tmp_path, data))


def test_missing_section_and_missing_file(tmp_path, params_data):
    data = {k: v for k, v in params_data.items() if k != "split"}
    with pytest.raises(ParamsError, match=r"split: missing section"):
        load_section("split", write(tmp_path, data))
    with pytest.raises(ParamsError, match="file not found"):
        load_section("split", tmp_path / "nope.yaml")


def test_split_shares_must_leave_room_for_train(tmp_path, params_data):
    data = dict(params_data, split=dict(params_data["split"], validation=0.5, test=0.5))
    with pytest.raises(ParamsError, match="validation \\+ test must be below 1"):
        load_section("split", write(tmp_path, data))


def test_stage_with_bad_params_exits_nonzero_with_one_line_and_writes_nothing(tmp_path, root, params_data):
    shutil.copytree(root / "data/bundled", tmp_path / "data/bundled")
    data = dict(params_data, grid=dict(params_data["grid"], conversations=-5))
    write(tmp_path, data)
    proc = subprocess.run(stage_command("grid"), cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "grid.conversations" in lines[0]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["bundled"]


def test_generate_model_path_that_does_not_exist_is_reported(tmp_path, params_data):
    from hiwar.generation import get_backend

    params = load_section("generate", data=dict(params_data, generate=dict(params_data["generate"], model="models/nope")))
    from hiwar.errors import HiwarError

    with pytest.raises(HiwarError, match=r"generate\.model: models/nope does not exist"):
        get_backend(params)


def test_launcher_and_endpoints_are_checked(tmp_path, params_data):
    data = dict(params_data, finetune=dict(params_data["finetune"], launcher="srun python"))
    with pytest.raises(ParamsError, match=r"finetune\.launcher: .*expected `python`, `accelerate launch"):
        load_section("finetune", write(tmp_path, data))
    for launcher in ("accelerate launch --config_file configs/accelerate/ddp.yaml", "torchrun --nproc_per_node 4"):
        data = dict(params_data, finetune=dict(params_data["finetune"], launcher=launcher))
        assert load_section("finetune", write(tmp_path, data)).launcher == launcher
    http = dict(params_data["generate"]["http"], endpoints=[{"base_url": "localhost:8000", "concurrency": 4}])
    data = dict(params_data, generate=dict(params_data["generate"], http=http))
    with pytest.raises(ParamsError, match=r"generate\.http\.endpoints\.0\.base_url: .*http:// or https://"):
        load_section("generate", write(tmp_path, data))


def test_the_finetune_stage_command_follows_the_launcher_param(root):
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["finetune"]
    assert "${finetune.launcher} stages/finetune.py ${key}" in stage["do"]["cmd"]
    assert "finetune.launcher" in stage["do"]["params"]
