"""The engine seam (hiwar.engine): results in input order, a bound on the batches out, and outputs that do not
depend on how an engine cut the work or where it ran it."""

import hashlib
import os
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from hiwar import engine
from hiwar.cleaning import PROVENANCE, clean_file
from hiwar.dedup import hasher_for
from hiwar.errors import HiwarError
from hiwar.io import read_jsonl, write_parquet
from hiwar.params import load_section
from hiwar.params.engine import EngineParams
from hiwar.splitting import split_file

ROOT = Path(__file__).resolve().parents[1]


def square_all(offset, batch):
    return [offset + x * x for x in batch]


def pid_of(_, batch):
    return [os.getpid()] * len(batch)


def constant(value):
    return value


@pytest.mark.parametrize("workers", [1, 2])
def test_map_gives_results_in_input_order_with_the_setup_state(workers):
    local = engine.LocalEngine(EngineParams(workers=workers, in_flight=2))
    batches = [[i, i + 1] for i in range(0, 40, 2)]
    out = list(local.map(square_all, batches, setup=partial(constant, 1000)))
    assert out == [[1000 + x * x for x in batch] for batch in batches]


def test_a_pool_of_workers_really_runs_elsewhere():
    pids = {p for batch in engine.LocalEngine(EngineParams(workers=2)).map(pid_of, [[1]] * 8) for p in batch}
    assert os.getpid() not in pids


def test_no_more_batches_are_out_than_in_flight():
    pulled = []

    def batches():
        for i in range(20):
            pulled.append(i)
            yield [i]

    results = engine.LocalEngine(EngineParams(workers=2, in_flight=3)).map(square_all, batches(),
                                                                         setup=partial(constant, 0))
    next(results)
    assert len(pulled) <= 4  # three handed out, then one more as the first came back
    assert len(list(results)) == 19


def test_an_unknown_engine_is_one_clear_error():
    with pytest.raises(HiwarError, match="engine.name: 'spark' is not an engine"):
        engine.build(EngineParams(name="spark"))


def test_outside_a_stage_the_engine_is_one_local_worker():
    assert isinstance(engine.current(), engine.LocalEngine) and engine.current().params.workers == 1
    with engine.running(engine.LocalEngine(EngineParams(batch_rows=3))) as chosen:
        assert engine.current() is chosen
    assert engine.current() is not chosen


# --- outputs are byte for byte the same, however the work is cut -------------------------------------------


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory) -> Path:
    """The labelled raw generations, twice (so duplicates straddle batch boundaries), as the generate stage
    writes them."""
    corpus = read_jsonl(ROOT / "tests/fixtures/raw_generations.jsonl")
    rows = [{c: None for c in PROVENANCE} | {"conversation_id": f"{ex['id']}-{copy}", "topic": f"t{i % 5}",
                                             "country": "EG", "cell_id": f"t{i % 5}:EG:{i % 9}",
                                             "raw_text": ex["raw_text"], "finish_reason": ex["finish_reason"]}
            for copy in range(2) for i, ex in enumerate(corpus)]
    path = tmp_path_factory.mktemp("raw") / "generations.parquet"
    write_parquet(path, pd.DataFrame(rows))
    return path


def cleaned(raw: Path, out: Path, params: EngineParams) -> dict:
    out.mkdir()
    metrics = clean_file(raw, out / "kept.parquet", out / "rejected.parquet", load_section("clean", ROOT / "params.yaml"),
                         engine.LocalEngine(params))
    return {"kept": md5(out / "kept.parquet"), "rejected": md5(out / "rejected.parquet"), "metrics": metrics}


@pytest.mark.parametrize("params", [EngineParams(batch_rows=1), EngineParams(batch_rows=7),
                                    EngineParams(batch_rows=7, workers=2, in_flight=2)], ids=["1", "7", "7x2"])
def test_clean_outputs_do_not_depend_on_the_batches(raw_file, tmp_path, params):
    whole = cleaned(raw_file, tmp_path / "whole", EngineParams(batch_rows=10_000))
    assert whole["metrics"]["reasons"].get("exact_duplicate", 0) >= 40  # the second copy of each kept row
    assert cleaned(raw_file, tmp_path / "cut", params) == whole


def split_outputs(clean: Path, out: Path, params: EngineParams) -> dict:
    metrics = split_file(clean, out, load_section("split", ROOT / "params.yaml"),
                         hasher_for(load_section("clean", ROOT / "params.yaml")), engine.LocalEngine(params))
    return {p.name: md5(p) for p in sorted(out.iterdir())} | {"metrics": metrics}


@pytest.mark.parametrize("params", [EngineParams(batch_rows=1), EngineParams(batch_rows=7),
                                    EngineParams(batch_rows=7, workers=2, in_flight=2)], ids=["1", "7", "7x2"])
def test_split_outputs_do_not_depend_on_the_batches(bundled, tmp_path, params):
    rows = [{"conversation_id": f"c{i}", "cell_id": f"{c['topic']}:C{i // 2}", "topic": c["topic"], "country": "EG",
             "generator": "test", "messages": c["messages"]} for i, c in enumerate(bundled.conversations)]
    rows.append(rows[3] | {"conversation_id": "twin", "cell_id": "elsewhere"})  # a near-duplicate in another cell
    write_parquet(tmp_path / "clean.parquet", pd.DataFrame(rows))
    whole = split_outputs(tmp_path / "clean.parquet", tmp_path / "whole", EngineParams(batch_rows=10_000))
    assert sum(whole["metrics"]["conversations"].values()) == len(rows)
    assert split_outputs(tmp_path / "clean.parquet", tmp_path / "cut", params) == whole
