"""Where the pipeline's batches run: the one seam between what a step computes and the machinery that runs it.

A step (cleaning's verdicts, split's signatures, quality's per-conversation figures, generation's requests)
is a plain function of one batch. It hands `map` that function and its batches; the engine runs them, here or
elsewhere, and gives the results back in input order, so every output is the same whatever ran it. Steps
never import an engine: `run_stage` builds the one params.yaml's `engine` section names and `current()`
returns it. The section is kept out of every stage's DVC params, because no output may depend on it.

Engines are registered by name in ENGINES, as generation backends are in `hiwar.generation.BACKENDS`.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from hiwar.errors import HiwarError
from hiwar.params import PARAMS_FILE, load_section, read_params
from hiwar.params.engine import EngineParams

Batch = TypeVar("Batch")
Result = TypeVar("Result")


def no_setup() -> None:
    return None


def built(state):
    """A `setup` that hands every worker a state built beforehand (pickled to workers in other processes)."""
    return state


class Engine(ABC):
    def __init__(self, params: EngineParams):
        self.params = params

    @property
    def batch_rows(self) -> int:
        """Rows per batch when a step cuts a table into batches (outputs never depend on it)."""
        return self.params.batch_rows

    @abstractmethod
    def map(self, fn: Callable[[Any, Batch], Result], batches: Iterable[Batch],
            setup: Callable[[], Any] = no_setup) -> Iterator[Result]:
        """fn(state, batch) for every batch, results in input order; `state` is what `setup()` built, once per
        worker (a model, a hasher), so it is never shipped with each batch. At most `in_flight` batches are
        out at once, so a long input never sits in memory whole."""

    def close(self) -> None:
        """Release workers; the engine is not used after this."""


class LocalEngine(Engine):
    """This machine: in this process (workers: 1), or in a pool of worker processes."""

    def map(self, fn, batches, setup=no_setup):
        if self.params.workers == 1:
            state = setup()
            for batch in batches:
                yield fn(state, batch)
            return
        with ProcessPoolExecutor(self.params.workers, initializer=_set_up_worker, initargs=(setup,)) as pool:
            pending: deque = deque()
            batches = iter(batches)
            for batch in itertools.islice(batches, self.params.in_flight):
                pending.append(pool.submit(_run_in_worker, fn, batch))
            while pending:
                result = pending.popleft().result()  # the oldest first: input order
                for batch in itertools.islice(batches, 1):
                    pending.append(pool.submit(_run_in_worker, fn, batch))
                yield result


_worker_state: Any = None  # a pool worker's `setup()` result


def _set_up_worker(setup: Callable[[], Any]) -> None:
    global _worker_state
    _worker_state = setup()


def _run_in_worker(fn, batch):
    return fn(_worker_state, batch)


ENGINES: dict[str, type[Engine]] = {"local": LocalEngine}


def settings(path: Path = PARAMS_FILE) -> EngineParams:
    """params.yaml's `engine` section, or one local worker where a project has none."""
    data = read_params(path) if path.exists() else {}
    return load_section("engine", path, data) if "engine" in data else EngineParams()


def build(params: EngineParams) -> Engine:
    if params.name not in ENGINES:
        raise HiwarError(f"params.yaml: engine.name: {params.name!r} is not an engine (expected one of: "
                         f"{', '.join(ENGINES)})")
    return ENGINES[params.name](params)


_current: Engine | None = None


def current() -> Engine:
    """The engine of this stage (set by `run_stage`), or one local worker outside a stage."""
    return _current if _current is not None else LocalEngine(EngineParams())


@contextmanager
def running(engine: Engine):
    """Make `engine` the current one for the duration, and close it afterwards."""
    global _current
    previous, _current = _current, engine
    try:
        yield engine
    finally:
        _current = previous
        engine.close()
