from pathlib import Path

import pandas as pd

from hiwar.arabic import latin_prose_words, prose_arabic_ratio
from hiwar.engine import LocalEngine
from hiwar.params import EngineParams
from hiwar.cleaning import clean, clean_file, decide, parse_dialogue, trim_truncated
from hiwar.cleaning.parse import looks_cut, strip_special_tokens
from hiwar.cleaning.rules import has_placeholder, match_key
from hiwar.errors import HiwarError
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


# --- issue 15: what real Arabic output holds ----------------------------------------------------------


def reasons_of(text, finish="stop"):
    return decide({"raw_text": text, "finish_reason": finish}, PARAMS)[2]


def test_latin_names_addresses_and_terms_in_parentheses_are_not_leakage():
    turn = ("اشتريت هاتف iPhone 15 Pro Max من موقع amazon.sa، وللاستفسار راسلوا help@store.com أو زوروا "
            "https://store.com/ar، وهو يدعم الشحن السريع (fast charging) وتقنية USB-C.")
    assert latin_prose_words(turn) == [] and prose_arabic_ratio(turn) == 1.0


def test_latin_prose_inside_an_arabic_turn_is_leakage():
    assert latin_prose_words("قال لي المدير: please send the report today") == ["please", "send", "the", "report", "today"]
    assert prose_arabic_ratio("I'm sorry, but I can't help with that request.") == 0.0


def test_natural_short_turns_pass_and_wordless_turns_do_not():
    closing = GOOD + "\n[|Human|] شكرًا\n[|AI|] العفو!"
    assert reasons_of(closing) == []
    assert reasons_of(GOOD.replace("اقطف القمم كل أسبوع تقريبًا، فذلك يشجع النبتة على التفرع.", "؟")) == ["turn_too_short"]


def test_unfilled_template_slots_are_placeholders_and_real_brackets_are_not():
    for slot in ["[اسم الطبيب]", "{date}", "{{city_name}}", "<اسم المدينة>", "[YOUR NAME]", "[رقم الهاتف]"]:
        assert has_placeholder(match_key(f"تواصل مع {slot} غدًا")), slot
    for text in ["قال تعالى: [البقرة: 255]", "اقرأ [دليل الوزارة](https://moh.gov.sa)", "الكلمة [بتصرف]"]:
        assert not has_placeholder(match_key(text)), text
    assert reasons_of(GOOD.replace("الريحان", "[اسم النبتة]")) == ["placeholder"]


def test_stray_special_tokens_are_stripped_and_chatml_roles_become_labels():
    noisy = GOOD.replace("\n[|AI|]", "<|endoftext|>\n[|AI|]").replace("\n[|Human|]", "</s>\n<s>[|Human|]") + "<|im_end|><pad>"
    assert reasons_of(noisy) == []
    assert parse_dialogue(noisy) == parse_dialogue(GOOD)
    chatml = "<|im_start|>user\nسؤال عن الريحان؟<|im_end|>\n<|im_start|>assistant\nجواب عنه.<|im_end|>"
    assert [t["role"] for t in parse_dialogue(chatml)] == ["user", "assistant"]
    assert "<|" not in strip_special_tokens(chatml)


def test_prompt_echo_with_the_dialogue_in_its_input_section_is_parsed():
    echo = ("### Instruction: أكمل المحادثة أدناه بين [|Human|] و[|AI|]:\n### Input: [|Human|] اكتب محادثة عن الحدائق.\n"
            + GOOD + "\n### Response: [|AI|]")
    assert parse_dialogue(echo) == parse_dialogue(GOOD)


def test_a_cut_last_turn_is_seen_in_the_text_and_trimmed():
    others = ["سؤال؟", "جواب تام."]
    assert looks_cut("ويمكنك أيضًا أن تضيف إلى", others) and looks_cut("أولًا، افحص التربة،", others)
    assert not looks_cut("اقطف القمم كل أسبوع تقريبًا.", others) and not looks_cut("تسلم", others)
    cut = GOOD + "\n[|Human|] وهل يحتاج إلى سماد؟\n[|AI|] نعم، سمده مرة في الشهر بسماد سائل مخفف، ثم"
    messages, _, reasons, trimmed, _ = decide({"raw_text": cut, "finish_reason": "stop"}, PARAMS)
    assert trimmed and reasons == [] and len(messages) == 4
    # a trimmed conversation that is then rejected says `truncated` first, not that it duplicates its full twin
    kept, rejected, metrics = clean(raw_frame([GOOD, cut]), PARAMS)
    assert list(rejected["reasons"].iloc[0]) == ["truncated", "exact_duplicate"]
    assert metrics["first_reasons"] == {"truncated": 1}


def test_the_first_reason_is_the_cause():
    refusal = "[|Human|] أعطني جرعة هذا الدواء لطفلي.\n[|AI|] عذرًا، لا أستطيع ذلك."
    assert reasons_of(refusal) == ["refusal", "too_few_exchanges"]
    english_refusal = GOOD.replace("اقطف القمم كل أسبوع تقريبًا، فذلك يشجع النبتة على التفرع.",
                                   "I'm sorry, but I can't help with gardening questions.")
    assert reasons_of(english_refusal) == ["refusal", "low_arabic_ratio"]  # it refused; English is how
    slot_twice = GOOD.replace("ضعها قرب نافذة", "ضعها قرب [المكان]") + "\n[|AI|] وسمدها مرة كل شهر."
    assert reasons_of(slot_twice) == ["placeholder", "bad_alternation"]


def test_clean_file_streams_batches_and_matches_clean_in_memory(tmp_path):
    texts = [GOOD, GOOD.replace("كيف", "كَيْفَ"), "", GOOD.replace("الريحان", "النعناع").replace("نافذة", "شرفة"),
             GOOD + "\n[|Human|] وماذا عن"] * 3
    frame = raw_frame(texts)
    frame["conversation_id"] = [f"c{i:02d}" for i in range(len(frame))]
    frame.to_parquet(tmp_path / "raw.parquet", index=False)
    metrics = clean_file(tmp_path / "raw.parquet", tmp_path / "kept.parquet", tmp_path / "rejected.parquet", PARAMS,
                         LocalEngine(EngineParams(batch_rows=4)))
    kept, rejected, expected = clean(frame, PARAMS)
    assert metrics == expected
    assert pd.read_parquet(tmp_path / "kept.parquet")["conversation_id"].tolist() == kept["conversation_id"].tolist()
    streamed = pd.read_parquet(tmp_path / "rejected.parquet")
    assert [list(r) for r in streamed["reasons"]] == [list(r) for r in rejected["reasons"]]


def test_a_raw_file_that_is_not_parquet_is_one_clear_error(tmp_path):
    (tmp_path / "raw.parquet").write_text("not parquet")
    try:
        clean_file(tmp_path / "raw.parquet", tmp_path / "kept.parquet", tmp_path / "rejected.parquet", PARAMS)
    except HiwarError as exc:
        assert "raw.parquet: not a readable Parquet file" in str(exc)
    else:
        raise AssertionError("no error")
    assert not (tmp_path / "kept.parquet").exists()
