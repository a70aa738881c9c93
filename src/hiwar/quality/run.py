"""The quality stage's work on in-memory tables: `assess` returns the metrics (small, stable keys), the
per-topic/country/generator rows for `dvc plots`, the coverage cells, and train with contaminated
conversations removed (when asked) plus the removed ones with their reason codes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from hiwar import engine as engines
from hiwar.arabic import match_key
from hiwar.errors import HiwarError
from hiwar.io import atomic_path, write_json, write_parquet
from hiwar.params.quality import QualityParams
from hiwar.quality import contamination, coverage, diversity, fidelity
from hiwar.quality.ngrams import WORD, Corpus, conversation_text

GROUPS = ("topic", "country", "generator")
REMOVED_COLUMNS = ["conversation_id", "topic", "country", "reasons", "messages"]


@dataclass
class Assessment:
    metrics: dict
    per_group: dict[str, list[dict]]  # "topic" -> one row per topic, ...
    cells: pd.DataFrame
    train: pd.DataFrame  # train after decontamination (unchanged when it is off)
    removed: pd.DataFrame  # REMOVED_COLUMNS, one row per conversation taken out of train
    seconds: dict = field(default_factory=dict)  # per part, for logs/runs (never in metrics)


def embedding_sample(topics: pd.Series, size: int, seed: int) -> np.ndarray:
    """Row positions of a seeded sample of about `size` conversations, the same number from each topic."""
    rng = np.random.default_rng(seed)
    per_topic = max(2, -(-size // max(1, topics.nunique())))
    chosen = [rng.choice(rows, size=min(per_topic, len(rows)), replace=False)
              for _, rows in sorted(pd.Series(np.arange(len(topics)), index=topics.to_numpy()).groupby(level=0))]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


# Per-conversation work, one batch at a time, on the stage's engine.
def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _normalised(_, texts: list[str]) -> list[str]:
    return [match_key(t) for t in texts]


def varieties(kept: pd.DataFrame) -> dict:
    """Arabic variety of the kept conversations (cleaning's `variety`: msa or a dialect), overall and per
    requested country, with the share not in MSA: a first, coarse measure of dialect fidelity (a dialect
    conversation without the dialect's marker words counts as msa; see docs/quality.md)."""
    variety = kept["variety"].fillna("unknown") if "variety" in kept else pd.Series("unknown", index=kept.index)

    def counts(values: pd.Series) -> dict:
        found = values.value_counts()
        dialect = int(found.drop(["msa", "unknown"], errors="ignore").sum())
        return {"conversations": int(len(values)), **{str(k): int(v) for k, v in sorted(found.items())},
                "dialect_share": round(dialect / max(len(values), 1), 4)}

    return {"all": counts(variety),
            "per_country": {str(c): counts(v) for c, v in sorted(variety.groupby(kept["country"].astype(str)))}}


def _mentions(matcher: fidelity.CountryMatcher, pairs: list[tuple[str, str]]) -> list[bool]:
    """Whether each normalised conversation names its country."""
    return [bool(matcher.patterns[country].search(key)) for key, country in pairs]


def _mean(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return round(float(values.mean()), 4) if len(values) else None


def _positions(split: pd.DataFrame, row_of: dict[str, int], name: str) -> np.ndarray:
    missing = [i for i in split["conversation_id"] if i not in row_of]
    if missing:
        raise HiwarError(f"split {name}: conversation {missing[0]} is not among the kept conversations "
                         "(the split is older than the clean output; run `dvc repro split`)")
    return np.array([row_of[i] for i in split["conversation_id"]], dtype=np.int64)


def _contamination(kept, train, test, corpus, grams, sizes, eval_texts) -> tuple[dict, list[list[str]]]:
    """Per reference (the test split, then each evaluation file): train conversations sharing an n-gram of
    each size; and for each train conversation its reason codes (an n-gram of the longest size shared)."""
    row_of = {c: i for i, c in enumerate(kept["conversation_id"])}
    train_rows, test_rows = _positions(train, row_of, "train"), _positions(test, row_of, "test")
    train_index = np.full(len(kept), -1)
    train_index[train_rows] = np.arange(len(train_rows))
    counts, reasons = {}, [[] for _ in range(len(train))]
    for name in ["test", *eval_texts]:
        counts[name] = {"texts": len(test_rows) if name == "test" else len(eval_texts[name])}
        for n in sizes:  # ascending: `flags` ends as the longest size's
            hashes, owner = grams[n]
            if name == "test":
                reference = np.unique(hashes[np.isin(owner, test_rows)])
            else:
                reference = contamination.reference_ngrams(eval_texts[name], corpus, n)
            in_train = train_index[owner] >= 0
            flags = contamination.shares_ngram(hashes[in_train], train_index[owner[in_train]], len(train), reference)
            counts[name][f"train_conversations_{n}gram"] = int(flags.sum())
        for row in np.flatnonzero(flags):
            reasons[row].append("contaminated_test" if name == "test" else f"contaminated_eval:{name}")
    return counts, reasons


def assess(kept: pd.DataFrame, rejected: pd.DataFrame, splits: dict[str, pd.DataFrame], topics: pd.DataFrame,
           forms: dict[str, list[str]], params: QualityParams, embed: Callable[[list[str]], np.ndarray],
           eval_texts: dict[str, list[str]] | None = None, first_round: pd.DataFrame | None = None) -> Assessment:
    """The quality of `kept` (every kept conversation: the clean stage's, then the top-up stage's); with
    `first_round` (the clean stage's kept rows alone) the coverage cells also hold `kept_before`."""
    clock, cpu, seconds = time.perf_counter(), time.process_time(), {}

    def lap(part: str):  # wall and CPU seconds (all threads) of each part, for logs/runs and the bench
        nonlocal clock, cpu
        now, now_cpu = time.perf_counter(), time.process_time()
        seconds[part], seconds[f"{part}_cpu"] = round(now - clock, 3), round(now_cpu - cpu, 3)
        clock, cpu = now, now_cpu

    if kept.empty:
        raise HiwarError("quality: no kept conversations to assess (cleaning kept none)")
    kept = kept.reset_index(drop=True)
    engine = engines.current()
    texts = [conversation_text(m) for m in kept["messages"]]
    keys = [k for batch in tqdm(engine.map(_normalised, _chunks(texts, engine.batch_rows)), desc="quality: normalise",
                                unit="batch", dynamic_ncols=True) for k in batch]
    tokens = [WORD.findall(k) for k in keys]
    corpus = Corpus(tokens)
    grams = {n: corpus.ngrams(n) for n in sorted({1, 2, 3, *params.ngrams})}
    joined = [" ".join(t) for t in tokens]
    shared = diversity.shared_openings(diversity.opening_keys(kept["messages"]))
    lap("words_and_ngrams")

    # Embeddings: a seeded sample spread over topics, plus every topic's description.
    sample = embedding_sample(kept["topic"], params.embed_sample, params.seed)
    vectors = embed([texts[i][: params.embed_chars] for i in sample]) if len(sample) else np.zeros((0, 1))
    topic_vectors = embed([fidelity.topic_text(r.name_ar, r.description_ar) for r in topics.itertuples()])
    position = {t: i for i, t in enumerate(topics["topic_id"])}
    unknown = sorted(set(kept["topic"]) - set(position))
    if unknown:
        raise HiwarError(f"quality: the kept conversations' topic {unknown[0]!r} is not among the bundled topics")
    ranks = np.full(len(kept), -1)
    if len(sample):
        ranks[sample] = fidelity.topic_ranks(vectors, topic_vectors, kept["topic"].iloc[sample].map(position).to_numpy())
    vector_of = {int(row): vectors[k] for k, row in enumerate(sample)}
    lap("embeddings")

    pairs = _chunks(list(zip(keys, kept["country"])), engine.batch_rows)
    named = np.array([m for batch in engine.map(_mentions, pairs, setup=partial(fidelity.CountryMatcher, forms))
                      for m in batch], dtype=bool)
    lap("country_mentions")

    def figures(rows: np.ndarray, distinct: dict[int, float], bleu_sample: int) -> dict:
        embedded = [r for r in rows if r in vector_of]
        ranked = ranks[rows][ranks[rows] >= 0]
        return {
            "conversations": int(len(rows)),
            **{f"distinct_{n}": None if np.isnan(distinct[n]) else float(distinct[n]) for n in (1, 2, 3)},
            "self_bleu": diversity.self_bleu([joined[r] for r in rows], bleu_sample, params.seed),
            "embedding_dispersion": diversity.dispersion(np.array([vector_of[r] for r in embedded])),
            "shared_opening_share": _mean(shared[rows]),
            "embedded": len(embedded),
            "topic_top1": _mean(ranked == 0),
            "topic_top5": _mean(ranked < 5),
            "country_mention": _mean(named[rows]),
        }

    per_group = {}
    for column in (*GROUPS, None):
        codes, names = pd.factorize(kept[column]) if column else (np.zeros(len(kept), dtype=np.int64), ["all"])
        distinct = {n: diversity.distinct_n(grams[n][0], codes[grams[n][1]], len(names)) for n in (1, 2, 3)}
        members = pd.Series(np.arange(len(kept))).groupby(codes).indices
        rows = [{column or "all": str(name), **figures(members[g], {n: d[g] for n, d in distinct.items()},
                                                       params.self_bleu_group_sample if column else params.self_bleu_sample)}
                for g, name in tqdm(list(enumerate(names)), desc=f"quality: per {column or 'dataset'}",
                                    unit="group", dynamic_ncols=True)]
        per_group[column or "all"] = sorted(rows, key=lambda r: r[column or "all"])
    overall = per_group.pop("all")[0]
    lap("diversity_and_fidelity")

    cells = coverage.cell_counts(kept, rejected)
    if first_round is not None:
        cells = coverage.with_first_round(cells, first_round)
    lap("coverage")

    train = splits["train"].reset_index(drop=True)
    contaminated, reasons = _contamination(kept, train, splits["test"], corpus, grams, params.ngrams, eval_texts or {})
    drop = np.array([bool(r) for r in reasons], dtype=bool) if params.decontaminate else np.zeros(len(train), bool)
    removed = train[drop].assign(reasons=[r for r, d in zip(reasons, drop) if d])[REMOVED_COLUMNS]
    lap("contamination")

    metrics = {
        "conversations": int(len(kept)),
        "diversity": {k: overall[k] for k in ("distinct_1", "distinct_2", "distinct_3", "self_bleu",
                                              "embedding_dispersion", "shared_opening_share")},
        "fidelity": {"topic_top1": overall["topic_top1"], "topic_top5": overall["topic_top5"],
                     "country_mention": overall["country_mention"], "embedded_conversations": overall["embedded"]},
        "coverage": coverage.coverage_metrics(cells),
        "variety": varieties(kept),
        "contamination": {"test": contaminated.pop("test"), "eval_files": contaminated,
                          "train_removed": int(drop.sum())},
    }
    return Assessment(metrics, per_group, cells, train[~drop].reset_index(drop=True),
                      removed.reset_index(drop=True), seconds)


def variety_table(variety: dict | None) -> str:
    """The card's table of Arabic varieties per requested country."""
    if not variety:
        return ""
    names = sorted({k for v in [variety["all"], *variety["per_country"].values()] for k in v}
                   - {"conversations", "dialect_share"}, key=lambda k: (k != "msa", k == "unknown", k))
    rows = [f"| {country} | {v['conversations']} | " + " | ".join(str(v.get(n, 0)) for n in names)
            + f" | {v['dialect_share']} |" for country, v in [*variety["per_country"].items(), ("all", variety["all"])]]
    return ("Arabic variety of the kept conversations per requested country (cleaning's `variety`: msa, or a dialect\n"
            "named by its marker words; coarse, see docs/quality.md):\n\n"
            f"| country | kept | {' | '.join(names)} | dialect share |\n| --- | --- |{' --- |' * len(names)} --- |\n"
            + "\n".join(rows) + "\n")


def before_topup(coverage: dict) -> str:
    b = coverage.get("before_topup")
    return f"; after the first round alone, before top-up: {b['cells_kept']} kept, {b['cells_empty']} empty" if b else ""


def card(metrics: dict, params: QualityParams) -> str:
    """The quality folder's README.md: the quality section the card stage quotes."""
    d, f, c, x = metrics["diversity"], metrics["fidelity"], metrics["coverage"], metrics["contamination"]
    longest = params.ngrams[-1]
    files = "".join(f"- `{name}`: {v[f'train_conversations_{longest}gram']} train conversations share a "
                    f"{longest}-gram with its {v['texts']} texts\n" for name, v in x["eval_files"].items())
    return f"""# Dataset card: quality

Written by the `quality` stage from data/clean and data/split (see docs/quality.md for what each figure means
and what it does not say). {metrics['conversations']} kept conversations.

| diversity | value |
| --- | --- |
| distinct-1 / 2 / 3 (normalised words) | {d['distinct_1']} / {d['distinct_2']} / {d['distinct_3']} |
| self-BLEU (symmetric, {params.self_bleu_sample}-conversation seeded sample; lower = more varied) | {d['self_bleu']} |
| embedding dispersion (mean pairwise cosine distance, {params.encoder}) | {d['embedding_dispersion']} |
| share with an opening user turn another conversation shares | {d['shared_opening_share']} |

Fidelity to the cell: own topic ranked first among all topics for {f['topic_top1']} of
{f['embedded_conversations']} embedded conversations, in the top 5 for {f['topic_top5']}; the country is
named (name, adjective or capital) in {f['country_mention']} of all kept conversations.

{variety_table(metrics.get("variety"))}
Coverage: {c['cells_kept']} of {c['cells_requested']} requested topic x country cells have a kept conversation
({c['cells_empty']} empty{before_topup(c)}); Gini of kept conversations per topic {c['gini_topic']}, per country {c['gini_country']}.

Contamination ({', '.join(map(str, params.ngrams))}-grams of normalised words):
- test split ({x['test']['texts']} conversations): {', '.join(f"{x['test'][f'train_conversations_{n}gram']} train conversations share a {n}-gram" for n in params.ngrams)}
{files}- removed from train (quality.decontaminate = {str(params.decontaminate).lower()}): {x['train_removed']}
  (listed with reasons in data/quality/removed.parquet; the decontaminated train is data/quality/train.parquet)
"""


def write_outputs(result: Assessment, kept: pd.DataFrame, params: QualityParams, out: str | Path,
                  plots: str | Path) -> None:
    """The stage's files: decontaminated train, removed rows, cells and the card section in `out`; plot data
    and the coverage heatmap in `plots`."""
    out, plots = Path(out), Path(plots)
    for column in GROUPS:
        write_json(plots / f"per_{column}.json", result.per_group[column])
    write_json(plots / "kept_cells.json", kept[["topic", "country"]].to_dict("records"))
    with atomic_path(plots / "coverage.png") as tmp:
        coverage.heatmap(result.cells, tmp)
    write_parquet(out / "train.parquet", result.train)
    write_parquet(out / "removed.parquet", result.removed)
    with atomic_path(out / "cells.csv") as tmp:
        result.cells.to_csv(tmp, index=False)
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text(card(result.metrics, params), encoding="utf-8")
