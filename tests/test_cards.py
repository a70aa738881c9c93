"""The published folder's cards, checked by the clients people use: `datasets.load_dataset(folder)` reads the
splits from README.md alone, `mlcroissant` validates croissant.json and reads its records, and a changed
dataset changes both. The inputs are a scratch project's, made from the bundled conversations."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import mlcroissant as mlc
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from dvc_data.hashfile.hash import file_md5

from conftest import ROOT, stage_command
from hiwar.cards import hf, pii
from hiwar.cards.facts import Inputs, Params
from hiwar.cards.run import write_cards
from hiwar.cleaning.rules import CAUSES
from hiwar.errors import HiwarError
from hiwar.generation.grid import COLUMNS as GRID_COLUMNS
from hiwar.params import ParamsError, load_section
from hiwar.reproducible import environment, settings

SPLITS = ("train", "validation", "test")
SIZES = {"train": 24, "validation": 4, "test": 4}
CARD_PARAMS = {"date_published": "2026-12-08", "url": "https://example.org/hiwar"}


def frame(bundled, n=sum(SIZES.values())) -> pd.DataFrame:
    personas = ["student", "parent", "retiree"]
    rows = [{"conversation_id": f"c{i:03d}", "cell_id": f"{c['topic']}:{'EG' if i % 3 else 'MA'}{i}",
             "topic": c["topic"], "country": "EG" if i % 3 else "MA", "sample_index": 0, "exchanges": 3 + i % 2,
             "persona": personas[i % 3], "generator": "fake", "template": "tiny", "prompt_hash": f"{i:016x}",
             "messages": c["messages"]} for i, c in enumerate(bundled.conversations[:n])]
    return pd.DataFrame(rows)


def write_inputs(root: Path, rows: pd.DataFrame, sizes=SIZES, rejected: int = 8) -> None:
    """Split files, grid, coverage cells and the four stages' metrics, all telling the same story."""
    (root / "data/split").mkdir(parents=True, exist_ok=True)
    start = 0
    for name in SPLITS:
        rows.iloc[start:start + sizes[name]].to_parquet(root / f"data/split/{name}.parquet", index=False)
        start += sizes[name]
    kept = rows.iloc[:start]
    grid = pd.concat([kept, kept.iloc[:rejected].assign(cell_id=lambda d: d["cell_id"] + "x", country="TN")])
    grid = grid.assign(persona_ar="طالب", topic_ar="-", topic_description="-", country_ar="-")[
        GRID_COLUMNS + ["topic_ar", "topic_description", "country_ar", "persona_ar"]]
    grid.to_parquet(root / "data/grid.parquet", index=False)
    (root / "data/quality").mkdir(parents=True, exist_ok=True)
    cells = grid.groupby(["topic", "country"]).size().rename("requested").reset_index()
    cells["kept"] = cells.apply(lambda r: int(((kept.topic == r.topic) & (kept.country == r.country)).sum()), axis=1)
    cells.to_csv(root / "data/quality/cells.csv", index=False)
    zero = {"turn": 0, "8gram": 0, "13gram": 0}
    pairs = {p: zero for p in ("train/validation", "train/test", "validation/test")}
    metrics = {
        "generate": {"requested": len(grid), "succeeded": len(grid), "failed": 0, "empty": 0, "hit_max_tokens": 3},
        "clean": {"input": len(grid), "kept": start, "rejected": rejected, "kept_fraction": round(start / len(grid), 4),
                  "trimmed_truncated_turn": 2, "reasons": {"near_duplicate": rejected},
                  "first_reasons": {"near_duplicate": rejected}},
        "split": {"conversations": dict(sizes), "cells": dict(sizes), "topics": dict(sizes),
                  "cells_in_several_splits": 0, "near_duplicate_pairs_across_splits": 0,
                  "independent_leaks": {"before_fix": pairs, "after_fix": pairs,
                                        "moved_to_train": {"validation": 0, "test": 0}}},
        "quality": {"conversations": start,
                    "diversity": {"distinct_1": 0.4, "distinct_2": 0.8, "distinct_3": 0.9, "self_bleu": 0.3,
                                  "embedding_dispersion": 0.2, "shared_opening_share": 0.0},
                    "fidelity": {"topic_top1": 0.5, "topic_top5": 0.9, "country_mention": 0.25,
                                 "embedded_conversations": start},
                    "coverage": {"cells_requested": len(cells), "cells_kept": int((cells.kept > 0).sum()),
                                 "cells_empty": int((cells.kept == 0).sum()), "gini_topic": 0.1, "gini_country": 0.3},
                    "contamination": {"test": {"texts": sizes["test"], "train_conversations_8gram": 0,
                                               "train_conversations_13gram": 0},
                                      "eval_files": {}, "train_removed": 0}},
        "topup": {"status": "on", "quota": 1, "max_rounds": 2, "budget": 0.5, "first_round_requests": len(grid),
                  "budget_requests": len(grid) // 2, "rounds_run": 1, "stopped": "budget_spent", "extra_requests": 3,
                  "extra_share": 0.1, "failed": 0, "tokens_in": 30, "tokens_out": 300, "kept": 0, "rejected": 3,
                  "cells": len(cells), "cells_at_quota": {"before": 3, "after": 3},
                  "cells_with_kept": {"before": 3, "after": 3}, "kept_conversations": {"before": start, "after": start},
                  "shortfall": {"cells": 1, "missing_conversations": 1, "why": {"budget_spent": 1},
                                "first_reasons": {"truncated": 3}}, "rounds": []},
    }
    (root / "metrics").mkdir(exist_ok=True)
    for name, data in metrics.items():
        (root / f"metrics/{name}.json").write_text(json.dumps(data), encoding="utf-8")


def set_card(root: Path, **values) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    params["card"].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")


def inputs(root: Path) -> Inputs:
    m = root / "metrics"
    return Inputs(split=root / "data/split", grid=root / "data/grid.parquet", cells=root / "data/quality/cells.csv",
                  generators=root / "models/generator", generate_metrics=m / "generate.json",
                  clean_metrics=m / "clean.json", split_metrics=m / "split.json", quality_metrics=m / "quality.json",
                  topup_metrics=m / "topup.json")


def cards(root: Path) -> dict:
    """Write the cards in `root` with its params.yaml (the stage's work, in this process)."""
    path = root / "params.yaml"
    params = Params(*(load_section(n, path) for n in ("card", "generate", "clean", "split", "quality")))
    return write_cards(inputs(root), params, "data/split")


@pytest.fixture
def project(tmp_path, bundled):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    set_card(tmp_path, **CARD_PARAMS)
    write_inputs(tmp_path, frame(bundled))
    return tmp_path


def front_matter(card: Path) -> dict:
    return yaml.safe_load(card.read_text(encoding="utf-8").split("---\n")[1])


def load(folder: Path, tmp_path: Path):
    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))


def test_the_stage_writes_both_cards_and_its_metrics(project):
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "HF_HUB_OFFLINE": "1"} | environment(settings(ROOT / "params.yaml"))
    proc = subprocess.run(stage_command("card"), cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name for p in (project / "data/split").iterdir()} == {
        "train.parquet", "validation.parquet", "test.parquet", "README.md", "croissant.json"}
    figures = json.loads((project / "metrics/card.json").read_text())
    assert figures["conversations"] == SIZES and figures["personal_data"]["turns_scanned"] > 0


def test_load_dataset_reads_the_three_splits_from_the_card_alone(project, tmp_path):
    cards(project)
    folder = project / "data/split"
    # A stray Parquet file whose name says `train`: file-name guessing would add it to train; the card's
    # configs name each split's file, so it changes nothing.
    shutil.copy(folder / "test.parquet", folder / "train-extra.parquet")
    ds = load(folder, tmp_path)
    expected = json.loads((project / "metrics/split.json").read_text())["conversations"]
    assert list(ds) == list(SPLITS)
    assert {name: ds[name].num_rows for name in ds} == expected
    assert ds["train"].features == datasets.Features.from_arrow_schema(pq.read_schema(folder / "train.parquet"))
    assert ds["test"][0]["messages"] == [dict(m) for m in pd.read_parquet(folder / "test.parquet")["messages"][0]]


def test_datasets_holds_the_files_to_the_cards_counts(project, tmp_path):
    cards(project)
    card = project / "data/split/README.md"
    card.write_text(card.read_text(encoding="utf-8").replace("num_examples: 24", "num_examples: 25"), encoding="utf-8")
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        load(project / "data/split", tmp_path)


def test_mlcroissant_validates_the_metadata_and_reads_every_record(project):
    cards(project)
    folder = project / "data/split"
    dataset = mlc.Dataset(jsonld=str(folder / "croissant.json"))  # raises mlc.ValidationError on any error
    assert dataset.metadata.ctx.issues.errors == set() and dataset.metadata.ctx.issues.warnings == set()
    records = list(dataset.records(record_set="conversations"))  # a Dataset reads its records once
    by_split = {name: [r for r in records if r["conversations/split"] == name.encode()] for name in SPLITS}
    assert {name: len(rows) for name, rows in by_split.items()} == SIZES
    for name in SPLITS:
        table = pd.read_parquet(folder / f"{name}.parquet")
        got = {r["conversations/conversation_id"].decode(): r for r in by_split[name]}
        assert set(got) == set(table["conversation_id"])
        row = table.iloc[0]
        messages = [{"role": m["conversations/messages/role"].decode(), "content": m["conversations/messages/content"].decode()}
                    for m in got[row["conversation_id"]]["conversations/messages"]]
        assert messages == [dict(m) for m in row["messages"]]
        assert got[row["conversation_id"]]["conversations/exchanges"] == row["exchanges"]


def test_croissant_carries_the_rai_fields_and_the_files_hashes(project):
    cards(project)
    folder = project / "data/split"
    doc = json.loads((folder / "croissant.json").read_text(encoding="utf-8"))
    assert "http://mlcommons.org/croissant/1.1" in doc["conformsTo"] and doc["license"].startswith("https://spdx.org/")
    for key in ("rai:dataCollection", "rai:dataBiases", "rai:dataLimitations", "rai:personalSensitiveInformation",
                "rai:dataCollectionMissingData", "rai:dataPreprocessingProtocol", "rai:dataUseCases"):
        assert doc[key], key
    assert any("Coverage:" in b and "Gini" in b for b in doc["rai:dataBiases"])
    assert any("How that was checked" in p for p in doc["rai:personalSensitiveInformation"])
    objects = {d["name"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    assert set(objects) == {f"{s}.parquet" for s in SPLITS}
    for name, obj in objects.items():
        data = (folder / name).read_bytes()
        assert obj["sha256"] == hashlib.sha256(data).hexdigest()
        assert obj["md5"] == file_md5(str(folder / name))  # DVC's own hash of the file, as dvc.lock records it
    fields = {f["name"] for rs in doc["recordSet"] if rs["@id"] == "conversations" for f in rs["field"]}
    assert fields == {"split"} | set(pq.read_schema(folder / "train.parquet").names)


def test_a_changed_dataset_changes_both_cards(project, bundled):
    cards(project)
    folder = project / "data/split"
    before = {name: (folder / name).read_text(encoding="utf-8") for name in ("README.md", "croissant.json")}
    old_hash = hashlib.sha256((folder / "train.parquet").read_bytes()).hexdigest()
    smaller = {**SIZES, "train": 20}
    write_inputs(project, frame(bundled), smaller, rejected=12)
    cards(project)
    after = {name: (folder / name).read_text(encoding="utf-8") for name in ("README.md", "croissant.json")}
    new_hash = hashlib.sha256((folder / "train.parquet").read_bytes()).hexdigest()
    assert new_hash != old_hash
    assert old_hash in before["README.md"] and new_hash in after["README.md"] and old_hash not in after["README.md"]
    assert new_hash in after["croissant.json"] and old_hash not in after["croissant.json"]
    assert "num_examples: 24" in before["README.md"] and "num_examples: 20" in after["README.md"]
    assert "| train | `train.parquet` | 20 |" in after["README.md"]
    assert '"The train split: 20 conversations."' in after["croissant.json"]
    cards(project)  # the same inputs give the same bytes
    assert after == {name: (folder / name).read_text(encoding="utf-8") for name in ("README.md", "croissant.json")}


def test_inputs_from_two_runs_stop_the_stage_before_it_writes(project, bundled):
    write_inputs(project, frame(bundled))
    split = json.loads((project / "metrics/split.json").read_text())
    split["conversations"]["train"] = 23  # the metrics of another run of the split stage
    (project / "metrics/split.json").write_text(json.dumps(split))
    with pytest.raises(HiwarError, match=r"split.json: conversations: .* in the split files .*dvc repro split"):
        cards(project)
    assert not (project / "data/split/README.md").exists() and not (project / "data/split/croissant.json").exists()


def test_the_personal_data_scan_names_what_it_finds(project, bundled):
    rows = frame(bundled)
    messages = [dict(m) for m in rows.at[2, "messages"]]
    messages[1]["content"] += " راسلني على ali.h@example.com أو اتصل على ٠٥٠١٢٣٤٥٦٧"
    rows.at[2, "messages"] = messages
    write_inputs(project, rows)
    figures = cards(project)
    assert figures["personal_data"]["turns_with_a_match"]["email"] == 1
    assert figures["personal_data"]["conversations_with_a_match"]["phone"] == 1
    card = (project / "data/split/README.md").read_text(encoding="utf-8")
    assert "e-mail addresses: 1 turn in 1 conversation (`c002`)" in card
    write_inputs(project, frame(bundled))
    cards(project)
    doc = json.loads((project / "data/split/croissant.json").read_text(encoding="utf-8"))
    assert "Found nothing in" in " ".join(doc["rai:personalSensitiveInformation"])


@pytest.mark.parametrize("text, kinds", [
    ("اتصل على ٠٥٠١٢٣٤٥٦٧", {"phone", "long_number"}), ("+966 50 123 4567", {"phone"}),
    ("البطاقة 4111 1111 1111 1111", {"card_number"}), ("GB82 WEST 1234 5698 7654 32", {"iban"}),
    ("www.gov.sa", {"url"}), ("192.168.1.10", {"ip_address"}), ("@hiwar_ar", {"social_handle"}),
    ("عام 2023، من 1500 - 2000 ريال، الساعة 10:30", set()), ("4111 1111 1111 1112", set()),  # no Luhn
])
def test_the_scan_sees_contact_details_and_not_ordinary_numbers(text, kinds):
    assert pii.kinds_in(text) == kinds


def test_every_reason_code_and_column_has_its_words_in_the_card():
    assert set(CAUSES) <= set(hf.REASONS)
    assert set(GRID_COLUMNS) | {"generator", "template", "prompt_hash", "messages"} <= set(hf.COLUMNS)


def test_card_params_are_checked_in_one_line(project):
    set_card(project, license="gpl-3.0")
    with pytest.raises(ParamsError, match=r"card.license: Input should be 'cc-by-4.0'"):
        load_section("card", project / "params.yaml")
    set_card(project, license="cc-by-4.0", version="1.0")
    with pytest.raises(ParamsError, match=r"card.version: String should match pattern"):
        load_section("card", project / "params.yaml")
    set_card(project, version="1.0.0")
    text = (project / "params.yaml").read_text(encoding="utf-8").replace("'2026-12-08'", "2026-12-08")
    (project / "params.yaml").write_text(text, encoding="utf-8")  # a YAML date, which DVC cannot read
    with pytest.raises(ParamsError, match=r"card.date_published.*Input should be a valid string"):
        load_section("card", project / "params.yaml")
