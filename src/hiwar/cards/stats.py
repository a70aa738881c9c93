"""What the cards say about the published files, read from the files as written: per split its conversations,
grid cells, topics, countries, exchanges and words per turn, the Arabic-script shares and the personal-data
scan; per file its size, sha256, md5 (the hash DVC records for the same bytes, so the cards and dvc.lock agree
without either reading the other) and its Arrow size (what `datasets` reports as a split's num_bytes)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from hiwar.arabic import ARABIC_LETTERS, LETTERS, latin_words
from hiwar.cards.pii import Scan
from hiwar.errors import HiwarError

SPLITS = ("train", "validation", "test")  # the order of the splits everywhere
REQUIRED = ["conversation_id", "cell_id", "topic", "country", "messages"]


@dataclass(frozen=True)
class FileFacts:
    name: str  # the file's name inside the published folder
    bytes: int
    sha256: str
    md5: str
    rows: int
    arrow_bytes: int


def file_facts(path: Path) -> FileFacts:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    table = pq.read_table(path)
    return FileFacts(path.name, path.stat().st_size, sha.hexdigest(), md5.hexdigest(), table.num_rows, table.nbytes)


def summary(values: list[float]) -> dict:
    """mean / median / max, or None when there are no values."""
    if not values:
        return {"mean": None, "median": None, "max": None}
    return {"mean": round(float(np.mean(values)), 1), "median": float(np.median(values)), "max": max(values)}


class SplitStats:
    """What the cards report about each split, gathered batch by batch (no texts kept)."""

    def __init__(self):
        self.rows = dict.fromkeys(SPLITS, 0)
        self.cells = {name: set() for name in SPLITS}
        self.topics = {name: Counter() for name in SPLITS}
        self.countries = {name: Counter() for name in SPLITS}
        self.exchanges = {name: [] for name in SPLITS}
        self.words = {name: {"user": [], "assistant": []} for name in SPLITS}
        self.column_values = {c: Counter() for c in ("generator", "template", "persona")}
        self.letters = self.arabic_letters = self.word_count = self.latin = 0
        self.scan = Scan()

    def add(self, name: str, rows: list[dict]) -> None:
        self.rows[name] += len(rows)
        for row in rows:
            self.cells[name].add(row["cell_id"])
            self.topics[name][row["topic"]] += 1
            self.countries[name][row["country"]] += 1
            for column, seen in self.column_values.items():
                if row.get(column) is not None:
                    seen[str(row[column])] += 1
            messages = row["messages"]
            self.exchanges[name].append(sum(m["role"] == "assistant" for m in messages))
            for m in messages:
                text = m["content"]
                if m["role"] in ("user", "assistant"):
                    self.words[name][m["role"]].append(len(text.split()))
                self.letters += len(LETTERS.findall(text))
                self.arabic_letters += len(ARABIC_LETTERS.findall(text))
                self.word_count += len(text.split())
                self.latin += len(latin_words(text))
            self.scan.add(row["conversation_id"], messages)

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def all_of(self, counters: dict[str, Counter]) -> Counter:
        return sum(counters.values(), Counter())

    def arabic_share(self) -> float | None:
        return round(self.arabic_letters / self.letters, 4) if self.letters else None

    def latin_per_1000_words(self) -> float | None:
        return round(1000 * self.latin / self.word_count, 2) if self.word_count else None

    def metrics(self) -> dict:
        return {"conversations": dict(self.rows), "arabic_letter_share": self.arabic_share(),
                "latin_words_per_1000": self.latin_per_1000_words(), "personal_data": self.scan.metrics()}


def read_splits(folder: Path, batch_rows: int = 2048) -> tuple[SplitStats, dict[str, FileFacts], object]:
    """Stats and file facts of folder/{train,validation,test}.parquet, and their (shared) Arrow schema."""
    stats, files, schema = SplitStats(), {}, None
    for name in SPLITS:
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise HiwarError(f"{path}: file not found (expected the output of stage `split`; run `dvc repro split`)")
        reader = pq.ParquetFile(path)
        missing = [c for c in REQUIRED if c not in reader.schema_arrow.names]
        if missing:
            raise HiwarError(f"{path}: missing column(s) {', '.join(missing)}")
        if schema is not None and not reader.schema_arrow.equals(schema):
            raise HiwarError(f"{path}: its columns differ from {SPLITS[0]}.parquet's (the cards describe one schema)")
        schema = reader.schema_arrow
        for batch in reader.iter_batches(batch_size=batch_rows):
            stats.add(name, batch.to_pylist())
        files[name] = file_facts(path)
    return stats, files, schema
