"""The fake backend drives generate -> clean -> split in process, with no model at all."""

from hiwar.cleaning import clean
from hiwar.generation.driver import generate, plan_requests, summarize
from hiwar.generation.cache import ResponseCache
from hiwar.generation.fake import FakeBackend
from hiwar.generation.grid import build_grid
from hiwar.params.clean import CleanParams
from hiwar.params.generate import GenerateParams
from hiwar.params.grid import GridParams
from hiwar.params.split import SplitParams
from hiwar.dedup import hasher_for
from hiwar.splitting import signatures, split, split_metrics


def test_fake_backend_through_clean_and_split(bundled, params_data, tmp_path):
    grid_params = GridParams.model_validate(dict(params_data["grid"], conversations=120))
    gen_params = GenerateParams.model_validate(dict(params_data["generate"], backend="fake"))
    grid = build_grid(grid_params, bundled)
    backend = FakeBackend(gen_params)

    raw, accounting = generate(grid, backend, gen_params, bundled.conversations, ResponseCache(tmp_path / "cache"))

    # The backend saw every rendered prompt once, in grid order, each with the seed its cache key gives.
    requests = [r for call in backend.calls for r in call]
    planned = plan_requests(grid, gen_params, bundled.conversations, backend)
    assert [r.seed for r in requests] == list(planned["request_seed"])
    assert all(r.prompt.startswith("<|prompt|>") for r in requests)
    assert summarize(raw, accounting, 1.0)[0]["succeeded"] == 120 and raw["generator"].eq("fake").all()

    kept, rejected, metrics = clean(raw, CleanParams.model_validate(params_data["clean"]))
    assert metrics["kept"] + metrics["rejected"] == 120
    # The fake repeats bundled conversations, so exact dedup must fire; nothing else should.
    assert set(metrics["reasons"]) <= {"exact_duplicate"} and metrics["kept"] > 0

    sigs = signatures(kept, hasher_for(CleanParams.model_validate(params_data["clean"])))
    parts = split(kept, SplitParams.model_validate(params_data["split"]), sigs)
    assert split_metrics(parts, 0.5, dict(zip(kept["conversation_id"], sigs)))["cells_in_several_splits"] == 0
    assert sum(len(p) for p in parts.values()) == metrics["kept"]
    row = parts["train"].iloc[0]
    assert list(row["messages"][0]) == ["role", "content"] and row["messages"][0]["role"] == "user"
