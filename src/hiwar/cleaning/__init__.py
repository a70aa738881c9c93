"""Cleaning: raw generator text -> `messages`, checked by Arabic-aware rules, duplicates removed.

Every input row ends up either kept or rejected with all of its reason codes, the real cause first, so
the counts add up: parse (parse.py) -> rules (rules.py) and language (language.py) -> exact and
near-duplicate removal (dedup.py). Every row, kept or rejected, carries the `language` found (and for Arabic
its `variety`: msa or a dialect).

The work comes in two steps. `verdicts` judges a batch of rows on its own (parse, rules, language, and for
a conversation that passes, the digest and MinHash signature dedup needs), so it runs on whatever engine the
stage was given (hiwar.engine); the language model is loaded once per worker (`worker_state`). `Cleaner` then takes the verdicts in input order and keeps the first of
every group of duplicates, holding only a digest and a signature per kept conversation, never its text.
`clean_file` streams a Parquet file of any size through both; `clean` is the same code on one in-memory
batch (tests, benches).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from hiwar import engine as engines
from hiwar.cleaning.language import Identifier, Language
from hiwar.cleaning.parse import looks_cut, parse, parse_dialogue, trim_truncated
from hiwar.cleaning.rules import by_cause, check, check_skipped, match_key
from hiwar.dedup import MinHasher, NearDupIndex, conversation_text, hasher_for
from hiwar.errors import HiwarError
from hiwar.io import ParquetSink, open_parquet
from hiwar.params.clean import CleanParams

PROVENANCE = ["conversation_id", "cell_id", "topic", "country", "sample_index", "exchanges", "persona",
              "generator", "template", "prompt_hash"]
LANGUAGE = ["language", "variety", "parsed_as"]  # what was read: its language, and the answer's form
REJECTED_EXTRA = ["reasons", "raw_text", "duplicate_of"]
REQUIRED = ["conversation_id", "raw_text", "finish_reason"]


def decide(row: dict, params: CleanParams, identifier: Identifier | None = None
           ) -> tuple[list[dict], list[str], list[str], bool, Language, str | None]:
    """Parsed messages, their match keys, reason codes (before dedup), whether a cut turn was trimmed, and
    the conversation's language (judged when an `identifier` is given, else unknown), and the answer's form
    (json_schema, json or text; None when there was no answer to read).

    A last turn cut mid-sentence (seen in the text, whatever finish_reason says; with finish_reason "length",
    any last turn that does not end a sentence; JSON that breaks off) is dropped with the unanswered user turn
    before it; if what is left is rejected, the first reason is `truncated`. Arabic-script text in another
    language is `not_arabic`, the language named in the row."""
    unknown = Language(None)
    if row["finish_reason"] == "error":
        return [], [], ["generation_failed"], False, unknown, None
    if not str(row["raw_text"] or "").strip():
        return [], [], ["empty_output"], False, unknown, None
    parsed = parse(row["raw_text"], row.get("prompt"))
    messages = parsed.messages
    trimmed = bool(messages) and (parsed.cut or looks_cut(
        messages[-1]["content"], [m["content"] for m in messages[:-1]], hit_limit=row["finish_reason"] == "length",
        unanswered=messages[-1]["role"] == "user" and len(messages) > 1))
    if trimmed:
        messages = trim_truncated(messages)
        if not messages:
            return [], [], ["truncated", "too_few_exchanges"], True, unknown, parsed.form
    keys = [match_key(m["content"]) for m in messages]
    language = identifier.identify(messages, keys) if identifier and messages else unknown
    reasons = check(messages, params, keys, row.get("prompt"))
    if language.not_arabic:
        reasons = by_cause(reasons + ["not_arabic"])
    return messages, keys, (["truncated"] + reasons if trimmed and reasons else reasons), trimmed, language, parsed.form


@dataclass
class Verdict:
    """One row judged on its own: the output row, its reasons before dedup, and what dedup needs."""
    row: dict  # provenance, messages, language and variety
    raw_text: str | None
    reasons: list[str]
    trimmed: bool
    digest: bytes | None = None  # of the normalised text, for a conversation that passed every rule
    signature: np.ndarray | None = None  # its MinHash signature


def verdicts(state: tuple[CleanParams, MinHasher, Identifier | None], rows: list[dict]) -> list[Verdict]:
    """The per-row half of cleaning, for one batch: needs nothing from any other row, so it runs anywhere."""
    params, hasher, identifier = state
    out = []
    for row in rows:
        messages, keys, reasons, trimmed, language, form = decide(row, params, identifier)
        verdict = Verdict({c: row.get(c) for c in PROVENANCE} | {"messages": messages, "language": language.language,
                                                                 "variety": language.variety, "parsed_as": form},
                          row["raw_text"], reasons, trimmed)
        if not reasons:
            text = conversation_text(messages, keys)
            verdict.digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            verdict.signature = hasher.signature(text)
        out.append(verdict)
    return out


def worker_state(params: CleanParams) -> tuple[CleanParams, MinHasher, Identifier | None]:
    """What every worker builds once: the params, the MinHash hasher and the language model (when
    `clean.language_id` is on)."""
    return params, hasher_for(params), Identifier() if params.language_id else None


class Cleaner:
    """The in-order half: takes verdicts in input order, keeps the first of every group of duplicates, and
    counts everything for the metrics."""

    def __init__(self, params: CleanParams):
        check_skipped(params)  # before any row is read
        self.params = params
        self.exact: dict[bytes, str] = {}  # digest of the normalised text -> first conversation_id
        self.near = NearDupIndex(params.near_dup_threshold, params.minhash_perm, params.shingle_chars)
        self.trimmed = 0
        self.totals = Counter()
        self.reasons, self.first_reasons = Counter(), Counter()
        self.tables = {c: defaultdict(lambda: {"input": 0, "kept": 0, "rejected": 0, "reasons": Counter()})
                       for c in ("topic", "country")}
        # languages of every row; varieties of the kept rows, also per requested country
        self.languages, self.varieties = Counter(), Counter()
        self.country_varieties: dict = defaultdict(Counter)
        self.forms = defaultdict(Counter)  # the answer's form (parsed_as) -> kept / rejected

    def remember(self, rows: Iterable[dict]) -> None:
        """Index conversations kept by an earlier run (the clean stage's, for top-up rounds) as if they had come
        first in input order: a later duplicate of one of them is rejected. They are not counted as input."""
        hasher = hasher_for(self.params)
        for row in rows:
            text = conversation_text([dict(m) for m in row["messages"]])  # the text `verdicts` hashes
            self.exact.setdefault(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest(), row["conversation_id"])
            self.near.add(row["conversation_id"], hasher.signature(text))

    def run(self, batches: Iterable[list[dict]], engine: engines.Engine) -> Iterator[tuple[list[dict], list[dict]]]:
        """(kept rows, rejected rows) of every batch, in input order; the verdicts run on `engine`."""
        for batch in engine.map(verdicts, batches, setup=partial(worker_state, self.params)):
            kept, rejected = [], []
            for verdict in batch:
                out, keep = self.settle(verdict)
                (kept if keep else rejected).append(out)
            yield kept, rejected

    def settle(self, verdict: Verdict) -> tuple[dict, bool]:
        """The output row (with reasons etc. when rejected) and whether it is kept, after dedup."""
        reasons, duplicate_of, cid = verdict.reasons, None, verdict.row["conversation_id"]
        self.trimmed += verdict.trimmed
        if not reasons:
            if verdict.digest in self.exact:
                reasons, duplicate_of = ["exact_duplicate"], self.exact[verdict.digest]
            else:
                similar = self.near.matches(verdict.signature)
                if similar:
                    reasons, duplicate_of = ["near_duplicate"], similar[0]
                else:
                    self.exact[verdict.digest] = cid
                    self.near.add(cid, verdict.signature)
            if reasons and verdict.trimmed:
                reasons = ["truncated"] + reasons
        self._count(verdict.row, reasons)
        if reasons:
            return verdict.row | {"reasons": reasons, "raw_text": verdict.raw_text, "duplicate_of": duplicate_of}, False
        return verdict.row, True

    def _count(self, row: dict, reasons: list[str]) -> None:
        outcome = "rejected" if reasons else "kept"
        self.totals["input"] += 1
        self.totals[outcome] += 1
        self.reasons.update(reasons)
        if reasons:
            self.first_reasons[reasons[0]] += 1
        self.languages[row.get("language") or "unknown"] += 1
        self.forms[row.get("parsed_as") or "unread"][outcome] += 1
        if not reasons:
            self.varieties[row.get("variety") or "unknown"] += 1
            self.country_varieties[row.get("country")][row.get("variety") or "unknown"] += 1
        for column, table in self.tables.items():
            entry = table[row.get(column)]
            entry["input"] += 1
            entry[outcome] += 1
            entry["reasons"].update(reasons)

    def metrics(self) -> dict:
        """Totals, and counts per reason, per first reason, per topic and per country; kept + rejected ==
        input everywhere. Languages count every row (`unknown`: nothing parsed, or too little text); varieties
        count the kept rows, overall and per requested country."""
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
            "languages": dict(sorted(self.languages.items())),
            "varieties": dict(sorted(self.varieties.items())),
            # json_schema (generate.structured), json (a message list in free text), text (labelled turns),
            # unread (failed or empty)
            "parsed_as": {form: {"kept": c["kept"], "rejected": c["rejected"]} for form, c in sorted(self.forms.items())},
            "per_topic": breakdown(self.tables["topic"]),
            "per_country": breakdown(self.tables["country"]),
            "variety_per_country": {str(country): dict(sorted(counts.items()))
                                    for country, counts in sorted(self.country_varieties.items(), key=lambda kv: str(kv[0]))},
        }


def clean(raw: pd.DataFrame, params: CleanParams, engine: engines.Engine | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Clean a DataFrame held in memory, as one batch: (kept, rejected, metrics)."""
    cleaner = Cleaner(params)
    kept, rejected = [], []
    for batch_kept, batch_rejected in cleaner.run([raw.to_dict("records")], engine or engines.current()):
        kept += batch_kept
        rejected += batch_rejected
    kept_df = pd.DataFrame(kept, columns=PROVENANCE + ["messages"] + LANGUAGE)
    rejected_df = pd.DataFrame(rejected, columns=PROVENANCE + ["messages"] + LANGUAGE + REJECTED_EXTRA)
    return kept_df, rejected_df, cleaner.metrics()


def output_schemas(raw_schema: pa.Schema) -> tuple[pa.Schema, pa.Schema]:
    """Kept and rejected schemas: the raw file's provenance column types, messages, language and variety,
    and the reject fields."""
    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    fields = [raw_schema.field(c) if c in raw_schema.names else pa.field(c, pa.string()) for c in PROVENANCE]
    kept = pa.schema(fields + [pa.field("messages", message)] + [pa.field(c, pa.string()) for c in LANGUAGE])
    rejected = pa.schema(list(kept) + [pa.field("reasons", pa.list_(pa.string())), pa.field("raw_text", pa.string()),
                                       pa.field("duplicate_of", pa.string())])
    return kept, rejected


def clean_file(source: str | Path, kept_path: str | Path, rejected_path: str | Path, params: CleanParams,
               engine: engines.Engine | None = None, progress: bool = False) -> dict:
    """Stream a raw-generations Parquet file in batches into kept and rejected Parquet files; both appear
    only when the whole input was cleaned. Returns the metrics."""
    source = Path(source)
    if not source.is_file():
        raise HiwarError(f"{source}: file not found (expected the output of stage `generate`; run `dvc repro`)")
    engine = engine or engines.current()
    reader = open_parquet(source)
    missing = [c for c in REQUIRED if c not in reader.schema_arrow.names]
    if missing:
        raise HiwarError(f"{source}: missing column(s) {', '.join(missing)}")
    columns = [c for c in PROVENANCE + ["raw_text", "finish_reason", "prompt"] if c in reader.schema_arrow.names]
    kept_schema, rejected_schema = output_schemas(reader.schema_arrow)
    batches = (batch.to_pylist() for batch in reader.iter_batches(batch_size=engine.batch_rows, columns=columns))
    cleaner = Cleaner(params)
    with ParquetSink(kept_path, kept_schema) as kept_out, ParquetSink(rejected_path, rejected_schema) as rejected_out, \
            tqdm(total=reader.metadata.num_rows, desc="clean", unit="conv", disable=not progress,
                 dynamic_ncols=True) as bar:
        for kept, rejected in cleaner.run(batches, engine):
            kept_out.write(kept)
            rejected_out.write(rejected)
            bar.update(len(kept) + len(rejected))
    return cleaner.metrics()


__all__ = ["clean", "clean_file", "Cleaner", "verdicts", "parse_dialogue", "trim_truncated", "check", "decide", "by_cause",
           "PROVENANCE", "LANGUAGE"]
