"""Reading and writing the pipeline's files. Every write goes to a temporary file first and is renamed into
place, so a stage that fails half way leaves no half-written output behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from hiwar.errors import HiwarError


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_json(path: str | Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")


ROW_GROUP = 8192  # rows per Parquet row group, so that stages reading in batches hold one group at a time


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, row_group_size=ROW_GROUP)


SINK_GROUP = 2048  # rows per row group of a file written in batches (ParquetSink)


class ParquetSink:
    """Rows into a Parquet file that appears whole or not at all, in row groups of SINK_GROUP rows whatever
    batches the rows arrive in: the file's bytes never depend on how an engine cut the work."""

    def __init__(self, path: str | Path, schema):
        self.path, self.schema = path, schema
        self.buffer: list[dict] = []
        self.groups = 0

    def __enter__(self):
        import pyarrow.parquet as pq

        self._place = atomic_path(self.path)
        self.writer = pq.ParquetWriter(self._place.__enter__(), self.schema)
        return self

    def write(self, rows: list[dict]) -> None:
        self.buffer += rows
        while len(self.buffer) >= SINK_GROUP:
            self._flush(self.buffer[:SINK_GROUP])
            self.buffer = self.buffer[SINK_GROUP:]

    def _flush(self, rows: list[dict]) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        self.groups += 1

    def __exit__(self, kind, value, traceback):
        failed = None
        if kind is None and (self.buffer or not self.groups):  # an empty result is one empty row group
            try:
                self._flush(self.buffer)
            except BaseException as exc:  # noqa: B036 -- the file must not appear; the error is raised below
                failed = exc
        self.writer.close()
        if failed is not None:
            self._place.__exit__(type(failed), failed, failed.__traceback__)
            raise failed
        return self._place.__exit__(kind, value, traceback)


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_parquet(path: str | Path, required: list[str] = ()) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the output of an earlier stage; run `dvc repro`)")
    frame = pd.read_parquet(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise HiwarError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def open_parquet(path: str | Path):
    """A pyarrow ParquetFile to read in batches; a missing or unreadable file is one clear error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the output of an earlier stage; run `dvc repro`)")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise HiwarError(f"{path}: not a readable Parquet file ({exc})") from exc


# Logs of a run (timings, failed requests) live outside DVC's outputs, beside the project's working folder.
LOGS = Path("logs")


def run_log_path(name: str) -> Path:
    """Where a stage keeps a log of this run: logs/<name>."""
    return LOGS / name


def write_run_facts(stage: str, facts: dict) -> Path:
    """Facts about this run only (seconds, cache hits, requests sent, the step resumed from), in
    logs/runs/<stage>.json. They stay out of metrics/, so two runs with identical results give an empty
    `dvc metrics diff` and leave dvc.lock unchanged."""
    path = run_log_path(f"runs/{stage}.json")
    write_json(path, facts)
    return path


def read_json(path: str | Path, default=None):
    """A JSON file (metrics, plot data), or `default` when there is none."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HiwarError(f"{path}: not valid JSON ({exc.msg})") from None


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise HiwarError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return rows


def is_local_path(source: str | Path) -> bool:
    """Whether a model source names a folder on this machine rather than a hub id: an absolute or ./ path,
    a path inside the project's models/ or data/, or any existing folder. The one rule for this."""
    text = str(source)
    return text.startswith(("/", "./", "../")) or Path(text).parts[:1] in (("models",), ("data",)) \
        or Path(text).is_dir()


def require_path(path: str | Path, key: str, what: str) -> Path:
    """The path named by params key `key`, or a one-line error saying what was expected there."""
    path = Path(path)
    if not path.exists():
        raise HiwarError(f"params.yaml: {key}: {path} does not exist (expected {what})")
    return path
