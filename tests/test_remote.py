"""The remote-storage helpers without a remote: DVC's error output explained, outputs mapped to stages,
and the release card's artifacts read from dvc.yaml and dvc.lock."""

import hashlib
import json

import pytest

from hiwar.errors import HiwarError
from hiwar.release import artifacts, cards, check_croissant
from hiwar.remote import explain_dvc_error, stage_of

# What dvc 3.67 prints for the three usual faults (recorded against a moto S3 server).
UNREACHABLE = ('ERROR: failed to connect to s3 (hiwar-test/main/files/md5) - Could not connect to the endpoint URL: '
               '"http://127.0.0.1:9/hiwar-test/main/files/md5"\nERROR: failed to pull data from the cloud - 4 files '
               'failed to download')
NO_CREDENTIALS = "ERROR: unexpected error - Unable to locate credentials"
NEVER_PUSHED = ("WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache files:\n"
                "md5: 7b48b07c2a1ea2a8f0c9b1a3e6a0f2d1\nEverything is up to date.\nERROR: failed to pull data from "
                "the cloud - Checkout failed for following targets:\ndata/clean/conversations.parquet\n"
                "models/finetuned/tiny_aragpt2\nIs your cache up to date?\n<https://error.dvc.org/missing-files>")


@pytest.fixture
def in_root(root, monkeypatch):
    monkeypatch.chdir(root)


def test_each_usual_fault_gets_one_line_with_its_fix(in_root):
    assert "the remote cannot be reached" in explain_dvc_error(UNREACHABLE, "dvc pull")
    message = explain_dvc_error(NO_CREDENTIALS, "dvc push")
    assert "credentials" in message and ".dvc/config.local" in message and "\n" not in message
    message = explain_dvc_error(NEVER_PUSHED, "dvc pull")
    assert message == ("`dvc pull`: never pushed to the remote: data/clean/conversations.parquet (rebuild it with "
                       "`dvc repro clean`), models/finetuned/tiny_aragpt2 (rebuild it with "
                       "`dvc repro finetune@tiny_aragpt2`)")
    assert explain_dvc_error("ERROR: something new\n", "dvc pull") == "`dvc pull` failed: ERROR: something new"


def test_outputs_map_to_the_stage_that_writes_them(in_root):
    assert stage_of("data/split/train.parquet") == "split"
    assert stage_of("models/base/tiny_aragpt2/config.json") == "models"
    assert stage_of("models/finetuned/tiny_arabiangpt") == "finetune@tiny_arabiangpt"
    assert stage_of("data/bundled/topics.csv") is None


def test_declared_artifacts_carry_the_hash_dvc_lock_records(in_root):
    found = {a["name"]: a for a in artifacts()}
    assert {"conversations-train", "conversations-test", "tiny-arabiangpt-dialogue"} <= set(found)
    assert found["conversations-train"]["type"] == "dataset" and found["tiny-aragpt2-dialogue"]["type"] == "model"
    assert all(len(a["md5"] or "") >= 32 for a in found.values())


def test_the_cards_are_released_artifacts(in_root):
    found = {a["name"]: a for a in artifacts()}
    assert cards() == {"README.md": found["conversations-card"]["path"],
                       "croissant.json": found["conversations-croissant"]["path"]}
    assert {p.rsplit("/", 1)[0] for p in cards().values()} == {found["conversations-train"]["path"].rsplit("/", 1)[0]}


def test_a_croissant_whose_hashes_are_not_its_files_is_not_released(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"rows")
    doc = {"distribution": [{"@type": "cr:FileObject", "contentUrl": "train.parquet",
                             "sha256": hashlib.sha256(b"rows").hexdigest()}]}
    (tmp_path / "croissant.json").write_text(json.dumps(doc))
    check_croissant(tmp_path / "croissant.json")
    (tmp_path / "train.parquet").write_bytes(b"other rows")
    with pytest.raises(HiwarError, match=r"train.parquet has sha256 .* the card says .*dvc repro card"):
        check_croissant(tmp_path / "croissant.json")
