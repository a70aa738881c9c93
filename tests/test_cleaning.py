from pathlib import Path

import pandas as pd

from hiwar.cleaning import clean, parse_dialogue, trim_truncated
from hiwar.params import load_section

PARAMS = load_section("clean", Path(__file__).resolve().parents[1] / "params.yaml")

GOOD = ("[|Human|] كيف أحافظ على نبتة الريحان في الشقة؟\n"
        "[|AI|] ضعها قرب نافذة مشمسة واسقها حين تجف التربة من الأعلى.\n"
        "[|Human|] وكم مرة أقطف أوراقها؟\n"
        "[|AI|] اقطف القمم كل أسبوع تقريبًا، فذلك يشجع النبتة على التفرع.")


def raw_frame(texts, finish="stop"):
    rows = []
    for i, text in enumerate(texts):
        rows.append({"conversation_id": f"c{i}", "cell_id": f"gardening:EG{i}", "topic": "gardening",
                     "country": "EG", "sample_index": 0, "exchanges": 2, "persona": "student",
                     "generator": "test", "template": "tiny", "prompt_hash": "x", "raw_text": text,
                     "finish_reason": finish if isinstance(finish, str) else finish[i]})
    return pd.DataFrame(rows)


def test_parses_jais_labels_and_drops_prompt_echo():
    turns = parse_dialogue("اكتب محادثة عن الحدائق\n" + GOOD)
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[0]["content"] == "كيف أحافظ على نبتة الريحان في الشقة؟"


def test_parses_arabic_and_english_labels_with_colons():
    text = "المستخدم: ما عاصمة عُمان؟\nالمساعد: عاصمتها مسقط.\nUser: شكرًا جزيلًا\nAssistant: عفوًا، بكل سرور."
    assert [t["role"] for t in parse_dialogue(text)] == ["user", "assistant", "user", "assistant"]


def test_truncated_generation_loses_only_its_cut_turn():
    turns = parse_dialogue(GOOD + "\n[|Human|] وماذا عن")
    assert len(trim_truncated(turns)) == 4
    assert len(trim_truncated(parse_dialogue(GOOD))) == 2  # a cut assistant turn takes its question with it


def test_every_row_is_kept_or_rejected_with_reasons_and_counts_add_up():
    diacritised_copy = GOOD.replace("كيف", "كَيْفَ")
    texts = [GOOD, diacritised_copy, "", "no labels at all", "[|AI|] جواب بلا سؤال يسبقه هنا.\n[|Human|] سؤال متأخر عن الموضوع",
             GOOD.replace("وكم مرة أقطف أوراقها؟", "How often should I pick the leaves?")]
    kept, rejected, metrics = clean(raw_frame(texts), PARAMS)
    assert metrics["input"] == len(texts) == metrics["kept"] + metrics["rejected"]
    assert list(kept["conversation_id"]) == ["c0"]
    reasons = dict(zip(rejected["conversation_id"], rejected["reasons"]))
    assert list(reasons["c1"]) == ["exact_duplicate"]  # identical after Arabic normalisation
    assert list(reasons["c2"]) == ["empty_output"]
    assert list(reasons["c3"]) == ["unparseable"]
    assert "bad_alternation" in reasons["c4"]
    assert "low_arabic_ratio" in reasons["c5"]
    assert sum(metrics["reasons"].values()) >= metrics["rejected"]


def test_copies_differing_only_in_tashkeel_tatweel_or_alef_form_are_duplicates():
    variants = [GOOD.replace("كيف", "كَيْفَ"), GOOD.replace("الريحان", "الريـــحان"), GOOD.replace("أحافظ", "احافظ"),
                GOOD.replace("أوراقها", "اوراقها")]
    kept, rejected, _ = clean(raw_frame([GOOD, *variants]), PARAMS)
    assert list(kept["conversation_id"]) == ["c0"]
    assert [list(r) for r in rejected["reasons"]] == [["exact_duplicate"]] * 4
    assert set(rejected["duplicate_of"]) == {"c0"}


def test_failed_generation_is_kept_as_rejected():
    kept, rejected, metrics = clean(raw_frame(["", GOOD], finish=["error", "stop"]), PARAMS)
    assert list(rejected["reasons"].iloc[0]) == ["generation_failed"] and len(kept) == 1
