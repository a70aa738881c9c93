import pandas as pd
import pytest

from hiwar.errors import HiwarError
from hiwar.params import SplitParams
from hiwar.splitting import SPLITS, split, split_metrics


def frame(n_cells=40, per_cell=3):
    return pd.DataFrame([{"conversation_id": f"{c}-{i}", "cell_id": f"topic{c % 7}:C{c}", "messages": []}
                         for c in range(n_cells) for i in range(per_cell)])


def test_no_cell_straddles_two_splits_and_all_are_nonempty():
    parts = split(frame(), SplitParams(seed=0, validation=0.1, test=0.1))
    metrics = split_metrics(parts)
    assert metrics["cells_in_several_splits"] == 0
    assert all(len(parts[name]) > 0 for name in SPLITS)
    assert sum(metrics["conversations"].values()) == 120
    assert 9 <= metrics["conversations"]["test"] <= 15


def test_split_is_deterministic_for_a_seed():
    a = split(frame(), SplitParams(seed=3, validation=0.1, test=0.1))
    b = split(frame(), SplitParams(seed=3, validation=0.1, test=0.1))
    c = split(frame(), SplitParams(seed=4, validation=0.1, test=0.1))
    assert all(a[n].equals(b[n]) for n in SPLITS)
    assert not a["test"]["cell_id"].equals(c["test"]["cell_id"])


def test_too_few_cells_is_a_clear_error():
    with pytest.raises(HiwarError, match="only 2 grid cell"):
        split(frame(n_cells=2), SplitParams(seed=0, validation=0.1, test=0.1))
