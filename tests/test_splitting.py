import datasets
import pandas as pd
import pytest

from hiwar.training.chat_format import render
from hiwar.errors import HiwarError
from hiwar.io import write_parquet
from hiwar.params.split import SplitParams
from hiwar.dedup import MinHasher
from hiwar import leakcheck
from hiwar.engine import LocalEngine
from hiwar.params.engine import EngineParams
from hiwar.splitting import SPLITS, leak_groups, signatures, split_file, split_with_report
from hiwar.splitting import split as split_with
from hiwar.splitting import split_metrics as metrics_with

PARAMS = SplitParams(seed=0, validation=0.1, test=0.1, leak_threshold=0.5)
HASHER = MinHasher(128, 5)


def sigs_of(frame):
    return signatures(frame, HASHER)


def split(frame, params):
    return split_with(frame, params, sigs_of(frame))


def split_metrics(parts, threshold):
    every = pd.concat(parts.values())
    return metrics_with(parts, threshold, dict(zip(every["conversation_id"], sigs_of(every))))


def frame_from(bundled, n_cells=60, per_cell=2):
    """Distinct bundled conversations, `per_cell` to a cell, topics taken from the conversations."""
    convs = bundled.conversations
    rows = []
    for c in range(n_cells):
        for i in range(per_cell):
            conv = convs[(c * per_cell + i) % len(convs)]
            rows.append({"conversation_id": f"{c}-{i}", "cell_id": f"{conv['topic']}:C{c}", "topic": conv["topic"],
                         "country": "EG", "generator": "test", "messages": conv["messages"]})
    return pd.DataFrame(rows)


def test_no_cell_straddles_two_splits_and_all_are_nonempty(bundled):
    parts = split(frame_from(bundled), PARAMS)
    metrics = split_metrics(parts, PARAMS.leak_threshold)
    assert metrics["cells_in_several_splits"] == 0 and metrics["near_duplicate_pairs_across_splits"] == 0
    assert all(len(parts[name]) > 0 for name in SPLITS)
    assert sum(metrics["conversations"].values()) == 120
    assert 10 <= metrics["conversations"]["test"] <= 14


def test_near_duplicates_in_different_cells_stay_together(bundled):
    frame = frame_from(bundled, n_cells=40, per_cell=1)
    twin = frame.iloc[[3]].copy()
    messages = [dict(m) for m in twin.iloc[0]["messages"]]
    messages[-1]["content"] = messages[-1]["content"].replace("،", "", 1)  # a one-character edit
    twin["conversation_id"], twin["cell_id"], twin["messages"] = "twin", "elsewhere:XX", [messages]
    frame = pd.concat([frame, twin], ignore_index=True)
    groups = leak_groups(frame, PARAMS.leak_threshold, sigs_of(frame))
    assert groups.iloc[3] == groups.iloc[-1]
    for s in range(5):  # whatever the seed, the pair lands in one split
        parts = split(frame, SplitParams(seed=s, validation=0.2, test=0.2, leak_threshold=0.5))
        where = [name for name, part in parts.items() if {"twin", "3-0"} & set(part["conversation_id"])]
        assert len(where) == 1
        assert split_metrics(parts, 0.5)["near_duplicate_pairs_across_splits"] == 0


def test_split_is_deterministic_for_a_seed(bundled):
    a = split(frame_from(bundled), PARAMS)
    b = split(frame_from(bundled), PARAMS)
    c = split(frame_from(bundled), PARAMS.model_copy(update={"seed": 4}))
    assert all(a[n].equals(b[n]) for n in SPLITS)
    assert set(a["test"]["cell_id"]) != set(c["test"]["cell_id"])


def test_topics_are_spread_over_the_splits(bundled):
    frame = frame_from(bundled, n_cells=120, per_cell=1)
    parts = split(frame, SplitParams(seed=0, validation=0.2, test=0.2, leak_threshold=0.5))
    # every topic with at least 5 conversations reaches at least two splits
    big = frame["topic"].value_counts()
    for topic in big[big >= 5].index:
        assert sum(topic in set(p["topic"]) for p in parts.values()) >= 2, topic


def test_too_few_groups_is_a_clear_error(bundled):
    with pytest.raises(HiwarError, match="only 2 leak-free group"):
        split(frame_from(bundled, n_cells=2, per_cell=3), PARAMS)


def test_split_loads_with_datasets_and_renders_through_a_chat_template(bundled, tmp_path, bpe_tokenizer):
    parts = split(frame_from(bundled), PARAMS)
    for name, part in parts.items():
        write_parquet(tmp_path / f"{name}.parquet", part)
    ds = datasets.load_dataset("parquet", data_files={s: str(tmp_path / f"{s}.parquet") for s in SPLITS})
    row = ds["train"][0]
    original = parts["train"].iloc[0]["messages"]
    assert row["messages"] == [dict(m) for m in original]
    assert render(bpe_tokenizer, row["messages"]).count("<|assistant|>") == len(original) // 2


# --- the independent leak check (issue 14) ----------------------------------------------------------------


SHARED = ("قبل أن تشتري سيارة مستعملة اطلب من البائع سجل الصيانة كاملًا، وافحص أرقام الهيكل والمحرك بنفسك، ثم "
          "اعرضها على ميكانيكي تثق به قبل أن تدفع أي مبلغ مقدمًا.")


def planted_leak(bundled, per_cell=1, rows=(5, 41)):
    """Two conversations otherwise different that share one long answer word for word, in different cells."""
    frame = frame_from(bundled, n_cells=60, per_cell=per_cell)
    for row in rows:
        messages = [dict(m) for m in frame.at[row, "messages"]]
        messages[1]["content"] = SHARED
        frame.at[row, "messages"] = messages
    return frame


def test_the_grouping_misses_a_shared_long_turn_and_the_independent_check_finds_it(bundled):
    frame = planted_leak(bundled)
    groups = leak_groups(frame, PARAMS.leak_threshold, sigs_of(frame))
    assert groups.iloc[5] != groups.iloc[41]  # different as a whole: MinHash does not link them
    held = {"validation": [], "test": [leakcheck.features(frame.at[41, "messages"])]}  # 41 in test, 5 in train
    report = leakcheck.check(held, [[leakcheck.features(frame.at[5, "messages"])]])
    assert report["before"]["train/test"] == {"turn": 1, "8gram": 1, "13gram": 1}
    assert report["moved"] == {"validation": [], "test": [0]}
    assert report["after"]["train/test"] == {"turn": 0, "8gram": 0, "13gram": 0}


def test_the_check_counts_nothing_for_different_conversations(bundled):
    frame = frame_from(bundled, n_cells=40, per_cell=1)
    held = {"validation": [leakcheck.features(m) for m in frame["messages"][:5]],
            "test": [leakcheck.features(m) for m in frame["messages"][5:10]]}
    report = leakcheck.check(held, [[leakcheck.features(m) for m in frame["messages"][10:]]])
    assert all(v == 0 for pair in report["before"].values() for k, v in pair.items() if k != "8gram")


def test_whatever_the_seed_a_planted_leak_ends_in_one_split(bundled):
    frame = planted_leak(bundled, per_cell=2, rows=(21, 108))  # 10-1 and 54-0, each with a cell-mate
    frame["cell_id"] = [cid.split("-")[0] for cid in frame["conversation_id"]]
    groups = leak_groups(frame, PARAMS.leak_threshold, sigs_of(frame))
    assert groups.iloc[21] != groups.iloc[108]
    acted = 0
    for seed in range(16):
        parts, report = split_with_report(frame, PARAMS.model_copy(update={"seed": seed}), sigs_of(frame))
        where = {cid: name for name, part in parts.items() for cid in part["conversation_id"]}
        assert where["10-1"] == where["54-0"], seed
        assert split_metrics(parts, 0.5)["cells_in_several_splits"] == 0, seed  # a moved row takes its cell
        assert all(v == 0 for pair in report["after"].values() for k, v in pair.items() if k != "8gram")
        acted += any(report["moved"].values())
    assert acted  # for some seed the grouping alone had put the pair in two splits


def test_split_file_streams_and_writes_the_same_splits_as_in_memory(bundled, tmp_path):
    frame = planted_leak(bundled)
    write_parquet(tmp_path / "clean.parquet", frame)
    metrics = split_file(tmp_path / "clean.parquet", tmp_path / "split", PARAMS, HASHER,
                         LocalEngine(EngineParams(batch_rows=7)))
    parts, report = split_with_report(frame, PARAMS, sigs_of(frame))
    for name in SPLITS:
        assert pd.read_parquet(tmp_path / f"split/{name}.parquet")["conversation_id"].tolist() == \
            parts[name]["conversation_id"].tolist()
    assert metrics["independent_leaks"]["before_fix"] == report["before"]
    assert metrics["conversations"] == {name: len(parts[name]) for name in SPLITS}
    assert metrics["cells"] == {name: parts[name]["cell_id"].nunique() for name in SPLITS}
    # The splits and nothing else: the cards beside them are the card stage's (tests/test_cards.py).
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(f"{name}.parquet" for name in SPLITS)
