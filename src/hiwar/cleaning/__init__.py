"""Cleaning: raw generator text -> `messages`, checked by Arabic-aware rules, duplicates removed.

Every input row ends up either kept or rejected with all of its reason codes, the real cause first, so
the counts add up: parse (parse.py) -> rules (rules.py) -> exact and near-duplicate removal (dedup.py), in
input order, so the first of a group of duplicates is the one kept.

`Cleaner` judges one row at a time and keeps only what duplicate detection needs (a digest and a MinHash
signature per kept conversation, never its text), so `clean_file` streams a Parquet file of any size in
batches; `clean` does the same for a DataFrame in memory (tests, benches).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from hiwar.cleaning.parse import looks_cut, parse_dialogue, trim_truncated
from hiwar.cleaning.rules import by_cause, check, match_key
from hiwar.dedup import NearDupIndex, conversation_text
from hiwar.errors import HiwarError
from hiwar.io import atomic_path, open_parquet
from hiwar.params import CleanParams

PROVENANCE = ["conversation_id", "cell_id", "topic", "country", "sample_index", "exchanges", "persona",
              "generator", "template", "prompt_hash"]
REJECTED_EXTRA = ["reasons", "raw_text", "duplicate_of"]
REQUIRED = ["conversation_id", "raw_text", "finish_reason"]


def decide(row: dict, params: CleanParams) -> tuple[list[dict], list[str], list[str], bool]:
    """Parsed messages, their match keys, reason codes (before dedup), and whether a cut turn was trimmed.

    A last turn cut mid-sentence (seen in the text; with finish_reason "length", any last turn that does not
    end a sentence) is dropped with the unanswered user turn before it; if what is left is rejected, the first reason is `truncated`."""
    if row["finish_reason"] == "error":
        return [], [], ["generation_failed"], False
    if not str(row["raw_text"] or "").strip():
        return [], [], ["empty_output"], False
    messages = parse_dialogue(row["raw_text"], row.get("prompt"))
    trimmed = bool(messages) and looks_cut(messages[-1]["content"], [m["content"] for m in messages[:-1]],
                                           hit_limit=row["finish_reason"] == "length")
    if trimmed:
        messages = trim_truncated(messages)
        if not messages:
            return [], [], ["truncated", "too_few_exchanges"], True
    keys = [match_key(m["content"]) for m in messages]
    reasons = check(messages, params, keys)
    return messages, keys, (["truncated"] + reasons if trimmed and reasons else reasons), trimmed


class Cleaner:
    """Judges rows in input order and keeps the running counts for the metrics."""

    def __init__(self, params: CleanParams):
        self.params = params
        self.exact: dict[bytes, str] = {}  # digest of the normalised text -> first conversation_id
        self.near = NearDupIndex(params.near_dup_threshold, params.minhash_perm, params.shingle_chars)
        self.trimmed = 0
        self.totals = Counter()
        self.reasons, self.first_reasons = Counter(), Counter()
        self.tables = {c: defaultdict(lambda: {"input": 0, "kept": 0, "rejected": 0, "reasons": Counter()})
                       for c in ("topic", "country")}

    def __call__(self, row: dict) -> tuple[dict, bool]:
        """The output row (provenance + messages, and reasons etc. when rejected) and whether it is kept."""
        messages, keys, reasons, was_trimmed = decide(row, self.params)
        self.trimmed += was_trimmed
        duplicate_of = None
        if not reasons:
            text = conversation_text(messages, keys)
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            if digest in self.exact:
                reasons, duplicate_of = ["exact_duplicate"], self.exact[digest]
            else:
                signature = self.near.signature(text)
                similar = self.near.matches(signature)
                if similar:
                    reasons, duplicate_of = ["near_duplicate"], similar[0]
                else:
                    self.exact[digest] = row["conversation_id"]
                    self.near.add(row["conversation_id"], signature)
            if reasons and was_trimmed:
                reasons = ["truncated"] + reasons
        self._count(row, reasons)
        out = {c: row.get(c) for c in PROVENANCE} | {"messages": messages}
        if reasons:
            return out | {"reasons": reasons, "raw_text": row["raw_text"], "duplicate_of": duplicate_of}, False
        return out, True

    def _count(self, row: dict, reasons: list[str]) -> None:
        outcome = "rejected" if reasons else "kept"
        self.totals["input"] += 1
        self.totals[outcome] += 1
        self.reasons.update(reasons)
        if reasons:
            self.first_reasons[reasons[0]] += 1
        for column, table in self.tables.items():
            entry = table[row.get(column)]
            entry["input"] += 1
            entry[outcome] += 1
            entry["reasons"].update(reasons)

    def metrics(self) -> dict:
        """Totals, and counts per reason, per first reason, per topic and per country; kept + rejected ==
        input everywhere."""
        def breakdown(table):
            return {k: v | {"reasons": dict(sorted(v["reasons"].items()))}
                    for k, v in sorted(table.items(), key=lambda kv: str(kv[0]))}

        n = self.totals["input"]
        return {
            "input": n,
            "kept": self.totals["kept"],
            "rejected": self.totals["rejected"],
            "kept_fraction": round(self.totals["kept"] / max(n, 1), 4),
            "trimmed_truncated_turn": self.trimmed,
            "reasons": dict(sorted(self.reasons.items())),
            "first_reasons": dict(sorted(self.first_reasons.items())),
            "per_topic": breakdown(self.tables["topic"]),
            "per_country": breakdown(self.tables["country"]),
        }


def clean(raw: pd.DataFrame, params: CleanParams, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Clean a DataFrame held in memory: (kept, rejected, metrics)."""
    cleaner = Cleaner(params)
    kept, rejected = [], []
    for row in tqdm(raw.to_dict("records"), desc="clean", unit="conv", disable=not progress, dynamic_ncols=True):
        out, keep = cleaner(row)
        (kept if keep else rejected).append(out)
    kept_df = pd.DataFrame(kept, columns=PROVENANCE + ["messages"])
    rejected_df = pd.DataFrame(rejected, columns=PROVENANCE + ["messages"] + REJECTED_EXTRA)
    return kept_df, rejected_df, cleaner.metrics()


def output_schemas(raw_schema: pa.Schema) -> tuple[pa.Schema, pa.Schema]:
    """Kept and rejected schemas: the raw file's provenance column types, messages, and the reject fields."""
    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    fields = [raw_schema.field(c) if c in raw_schema.names else pa.field(c, pa.string()) for c in PROVENANCE]
    kept = pa.schema(fields + [pa.field("messages", message)])
    rejected = pa.schema(list(kept) + [pa.field("reasons", pa.list_(pa.string())), pa.field("raw_text", pa.string()),
                                       pa.field("duplicate_of", pa.string())])
    return kept, rejected


def clean_file(source: str | Path, kept_path: str | Path, rejected_path: str | Path, params: CleanParams,
               batch_rows: int = 2048, progress: bool = False) -> dict:
    """Stream a raw-generations Parquet file in batches into kept and rejected Parquet files; both appear
    only when the whole input was cleaned. Returns the metrics."""
    source = Path(source)
    if not source.is_file():
        raise HiwarError(f"{source}: file not found (expected the output of stage `generate`; run `dvc repro`)")
    reader = open_parquet(source)
    missing = [c for c in REQUIRED if c not in reader.schema_arrow.names]
    if missing:
        raise HiwarError(f"{source}: missing column(s) {', '.join(missing)}")
    columns = [c for c in PROVENANCE + ["raw_text", "finish_reason", "prompt"] if c in reader.schema_arrow.names]
    kept_schema, rejected_schema = output_schemas(reader.schema_arrow)
    cleaner = Cleaner(params)
    with atomic_path(kept_path) as kept_tmp, atomic_path(rejected_path) as rejected_tmp, \
            pq.ParquetWriter(kept_tmp, kept_schema) as kept_out, \
            pq.ParquetWriter(rejected_tmp, rejected_schema) as rejected_out, \
            tqdm(total=reader.metadata.num_rows, desc="clean", unit="conv", disable=not progress,
                 dynamic_ncols=True) as bar:
        for batch in reader.iter_batches(batch_size=batch_rows, columns=columns):
            kept, rejected = [], []
            for row in batch.to_pylist():
                out, keep = cleaner(row)
                (kept if keep else rejected).append(out)
            kept_out.write_table(pa.Table.from_pylist(kept, schema=kept_schema))
            rejected_out.write_table(pa.Table.from_pylist(rejected, schema=rejected_schema))
            bar.update(batch.num_rows)
    return cleaner.metrics()


__all__ = ["clean", "clean_file", "Cleaner", "parse_dialogue", "trim_truncated", "check", "decide", "by_cause",
           "PROVENANCE"]
