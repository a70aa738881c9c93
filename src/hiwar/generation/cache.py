"""The content-addressed response cache: every answer a generator gave, keyed by what produced it.

Layout: a directory of JSON-lines segment files. Each process that generates appends to a new segment of
its own and never touches an existing one, so concurrent runs cannot interleave records and a segment that
DVC has hashed (`hiwar cache push`) is never modified. Every record is flushed as soon as it is written, so
after kill -9 only the record being written can be torn; it is detected on reading (no trailing newline or
not valid JSON), skipped with a warning and regenerated. Only answers are cached: a request that failed is
sent again by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path

from hiwar.errors import HiwarError


def request_key(*, model: str, revision: str | None, decoding: dict, prompt: str, chat: bool,
                sample_index: int) -> str:
    """sha256 over everything that decides an answer; the same inputs always give the same key."""
    payload = json.dumps(
        {"model": model, "revision": revision, "decoding": decoding, "prompt": prompt, "chat": chat,
         "sample_index": sample_index},
        ensure_ascii=False, sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.records: dict[str, dict] = {}
        self.torn: list[str] = []  # "segment:line" of each skipped record
        self._segment = None
        if self.directory.exists() and not self.directory.is_dir():
            raise HiwarError(f"{self.directory}: not a directory (expected generate.cache_dir to be a directory)")
        for path in sorted(self.directory.glob("*.jsonl")):
            self._read_segment(path)
        if self.torn:
            print(f"warning: {self.directory}: skipped {len(self.torn)} torn record(s) ({', '.join(self.torn[:3])}"
                  f"{' ...' if len(self.torn) > 3 else ''}), probably from a killed run; those requests will "
                  "be sent again", file=sys.stderr)

    def _read_segment(self, path: Path) -> None:
        with path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("no newline")
                    record = json.loads(line)
                    key = record["key"]
                except (ValueError, KeyError, TypeError):
                    if line.strip():
                        self.torn.append(f"{path.name}:{number}")
                    continue
                self.records.setdefault(key, record)  # the same key always holds an equivalent answer

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def add(self, record: dict) -> None:
        if record["key"] in self.records:
            return
        if self._segment is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}.jsonl"
            self._segment = (self.directory / name).open("ab")
        self._segment.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._segment.flush()  # in the kernel now: survives kill -9 of this process
        self.records[record["key"]] = record

    def close(self) -> None:
        if self._segment is not None:
            os.fsync(self._segment.fileno())  # and on disk, for a power cut after the run
            self._segment.close()
            self._segment = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
