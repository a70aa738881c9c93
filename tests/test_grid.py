import pandas as pd
import pytest

from hiwar.errors import HiwarError
from hiwar.generation.grid import build_grid
from hiwar.params.grid import GridParams


def grid_params(params_data, **changes):
    return GridParams.model_validate(dict(params_data["grid"], **changes))


def test_same_seed_same_rows_different_seed_different_rows(bundled, params_data):
    a = build_grid(grid_params(params_data), bundled)
    b = build_grid(grid_params(params_data), bundled)
    c = build_grid(grid_params(params_data, seed=14), bundled)
    pd.testing.assert_frame_equal(a, b)
    assert not a["cell_id"].equals(c["cell_id"])


def test_tiny_grid_spreads_over_all_topics(bundled, params_data):
    grid = build_grid(grid_params(params_data, conversations=240), bundled)
    assert len(grid) == 240 and grid["cell_id"].is_unique and grid["conversation_id"].is_unique
    per_topic = grid["topic"].value_counts()
    assert len(per_topic) == 93 and per_topic.max() - per_topic.min() <= 1


def test_paper_allocation_is_exact_and_even(bundled, params_data):
    grid = build_grid(grid_params(params_data, conversations=43_316), bundled)
    per_cell = grid.groupby("cell_id").size()
    assert len(grid) == 43_316
    assert len(per_cell) == 93 * 151
    assert per_cell.value_counts().to_dict() == {3: 14_043 - 1_187, 4: 1_187}
    assert grid["conversation_id"].is_unique


def test_unknown_topic_is_a_clear_error(bundled, params_data):
    with pytest.raises(HiwarError, match=r"grid\.topics: unknown id 'astrology'"):
        build_grid(grid_params(params_data, topics=["astrology"]), bundled)
