from pathlib import Path

import pandas as pd

from hiwar.arabic import latin_prose_words, prose_arabic_ratio
from hiwar.engine import LocalEngine
from hiwar.params.engine import EngineParams
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
    messages, _, reasons, trimmed, _, _ = decide({"raw_text": cut, "finish_reason": "stop"}, PARAMS)
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


# --- issue 24: the language read, and every answer shape ------------------------------------------------

from hiwar.cleaning import language as lang  # noqa: E402
from hiwar.cleaning.parse import parse  # noqa: E402

# Written for these tests: two turns per language, real sentences about everyday matters.
OTHER_LANGUAGES = {
    "fa": ("سلام، می‌خواهم برای تعطیلات نوروز به اصفهان بروم. بهترین جاهای دیدنی آنجا کدام‌اند؟",
           "حتماً میدان نقش جهان و سی‌وسه‌پل را ببینید و عصرها کنار زاینده‌رود قدم بزنید. هوا در بهار بسیار دلپذیر است."),
    "ur": ("میں اگلے مہینے اسلام آباد جانا چاہتا ہوں، وہاں کون سی جگہیں ضرور دیکھنی چاہئیں؟",
           "فیصل مسجد اور دامنِ کوہ ضرور دیکھیں، وہاں سے پورا شہر نظر آتا ہے۔ شام کو موسم بہت خوشگوار ہوتا ہے۔"),
    "ps": ("زه غواړم چې خپل زوی ښوونځي ته داخل کړم، کوم اسناد ته اړتیا لرم؟",
           "د زیږون تذکره، د مور او پلار تذکرې او دوه عکسونه له ځان سره یوسئ. د ښوونځي دفتر به نور معلومات درکړي."),
    "ckb": ("سڵاو، دەمەوێت لە هاویندا سەردانی سلێمانی بکەم. چی پێشنیار دەکەیت؟",
            "سەردانی چیای گۆیژە بکە و ئێواران لە بازاڕی شار پیاسە بکە. خواردنی کوردی لە چێشتخانە کۆنەکان زۆر بەتامە."),
    "ug": ("مەن ئۈرۈمچىگە بارماقچى، قايسى جايلارنى كۆرۈشكە ئەرزىيدۇ؟",
           "خەلقئارا چوڭ بازار ۋە قىزىل تاغ باغچىسى ناھايىتى داڭلىق. كەچتە بازاردا پولو ۋە كاۋاپ يېيىشنى ئۇنتۇپ قالماڭ."),
}
ARABIC = {
    "msa": ("ما أفضل طريقة لتعلم البرمجة للمبتدئين؟", "ابدأ بلغة سهلة مثل بايثون، وخصص ساعة يوميًا لحل تمارين صغيرة."),
    "egyptian": ("عايز أعرف أروح الأهرامات إزاي من وسط البلد؟",
                 "ممكن تركب المترو لحد الجيزة وبعدين تاخد تاكسي، ولو عايز أسهل اطلب عربية من التطبيق دلوقتي."),
    "gulf": ("أبغى أروح البر هالحين، شلون الجو؟", "الجو وايد حلو هالأيام، بس خذ معك جاكيت لأن الليل بارد."),
    "levantine": ("شو بدك تطبخ اليوم؟ بدي شي خفيف.", "فيك تعمل فتوش، كتير طيب وخفيف وما بياخد وقت منيح."),
    "maghrebi": ("بغيت نمشي لمراكش، كيفاش نوصل بالتران؟", "كاين التران من كازا كل ساعة، والتذكرة ماشي غالية بزاف."),
    "sudanese": ("يا زول داير أمشي السوق، الطريق كيف؟", "الطريق كويس هسع، بس أمش بدري عشان الزحمة ساي بتبدا الضهر."),
}


def conversation(user, assistant):
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant},
            {"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def test_arabic_script_languages_are_named_and_arabic_dialects_are_arabic():
    identifier = lang.Identifier()
    for code, (user, assistant) in OTHER_LANGUAGES.items():
        found = identifier.identify(conversation(user, assistant))
        assert (found.language, found.not_arabic, found.variety) == (code, True, None), code
    for variety, (user, assistant) in ARABIC.items():
        found = identifier.identify(conversation(user, assistant))
        assert (found.language, found.not_arabic) == ("ar", False), variety
        assert found.variety in (variety, "msa"), variety
    assert identifier.identify(conversation(*ARABIC["egyptian"])).variety == "egyptian"
    assert identifier.identify(conversation(*ARABIC["maghrebi"])).variety == "maghrebi"


def test_one_answer_switched_to_persian_is_not_arabic_and_english_is_named_but_left_to_the_script_rules():
    identifier = lang.Identifier()
    messages = conversation(*ARABIC["msa"])
    messages[3] = {"role": "assistant", "content": OTHER_LANGUAGES["fa"][1]}
    found = identifier.identify(messages)
    assert found.not_arabic and found.language == "fa"
    # Persian typed with Arabic ي and ك, none of its own letters: the one-sample path still names it
    typed = conversation("سلام، من مي‌خواهم براي تعطيلات نوروز به اصفهان بروم. بهترين جاهاي ديدني آنجا كدام‌اند؟",
                         "حتما ميدان نقش جهان را ببينيد و عصرها كنار زاينده‌رود قدم بزنيد. هوا در بهار بسيار دلنشين است.")
    assert not lang.FOREIGN_LETTER.search(typed[0]["content"] + typed[1]["content"])
    assert identifier.identify(typed).language == "fa"
    # the two turns joined: fa is the best label under 0.5, but above ar and arz together
    joined = lang.script_text(typed[0]["content"] + " " + typed[1]["content"])
    assert identifier.label(joined)[0] == "fa" and identifier.label(joined)[1] < lang.MIN_PROBABILITY
    assert identifier.other_language(joined, lang.MIN_PROBABILITY)[0] == "fa"
    english = identifier.identify(conversation("How do I learn to code?", "Start with Python and practise every day."))
    assert english.language == "en" and not english.not_arabic


def test_not_arabic_rows_name_their_language_and_kept_rows_their_variety():
    texts = ["\n".join(f"User: {u}\nAssistant: {a}" for u, a in [pair, ("شكرًا جزيلًا", "العفو، بالتوفيق!")])
             for pair in [OTHER_LANGUAGES["ur"], ARABIC["egyptian"], ARABIC["msa"]]]
    kept, rejected, metrics = clean(raw_frame(texts), PARAMS)
    assert list(rejected["reasons"].iloc[0]) == ["not_arabic"] and rejected["language"].iloc[0] == "ur"
    assert list(kept["language"]) == ["ar", "ar"] and list(kept["variety"]) == ["egyptian", "msa"]
    assert metrics["languages"] == {"ar": 2, "ur": 1} and metrics["varieties"] == {"egyptian": 1, "msa": 1}
    assert metrics["variety_per_country"] == {"EG": {"egyptian": 1, "msa": 1}}


def test_the_language_model_is_loaded_once_per_worker_not_per_row(monkeypatch):
    import hiwar.cleaning as cleaning

    built = []

    class Counting(lang.Identifier):
        def __init__(self):
            built.append(1)
            super().__init__()

    monkeypatch.setattr(cleaning, "Identifier", Counting)
    kept, _, _ = clean(raw_frame([GOOD] * 5), PARAMS)
    assert len(built) == 1 and len(kept) == 1  # (the other four are exact duplicates)
    clean(raw_frame([GOOD]), PARAMS.model_copy(update={"language_id": False}))
    assert len(built) == 1


JSON_TURNS = ('[{"role": "user", "content": "كيف أحافظ على نبتة الريحان في الشقة؟"}, '
              '{"role": "assistant", "content": "ضعها قرب نافذة مشمسة واسقها حين تجف التربة من الأعلى."}, '
              '{"role": "user", "content": "وكم مرة أقطف أوراقها؟"}, '
              '{"role": "assistant", "content": "اقطف القمم كل أسبوع تقريبًا، فذلك يشجع النبتة على التفرع."}]')


def test_json_message_lists_are_read_bare_fenced_wrapped_and_in_sharegpt_form():
    expected = parse_dialogue(GOOD)
    shapes = [JSON_TURNS, f"إليك المحادثة:\n```json\n{JSON_TURNS}\n```", f'{{"messages": {JSON_TURNS}}}',
              JSON_TURNS.replace('"role"', '"from"').replace('"content"', '"value"').replace('"assistant"', '"gpt"'),
              '[{"role": "system", "content": "أنت مساعد."}, ' + JSON_TURNS[1:]]
    for text in shapes:
        assert parse(text).messages == expected, text[:40]
        assert reasons_of(text) == []
    assert parse('{"topic": "الريحان", "summary": "نبتة عطرية."}').messages == []
    parts = JSON_TURNS.replace('"content": "وكم مرة أقطف أوراقها؟"',
                               '"content": [{"type": "text", "text": "وكم مرة أقطف أوراقها؟"}]')
    assert parse(parts).messages == expected
    example = ('User: كيف أرسل محادثة إلى واجهة البرمجة؟\nAssistant: أرسلها قائمةً بهذا الشكل: '
               '[{"role": "user", "content": "مرحبا"}] مع مفتاحك في الترويسة.\n'
               'User: وهل أضيف رسالة النظام؟\nAssistant: نعم، ضعها أول القائمة بالدور system.')
    assert [m["role"] for m in parse(example).messages] == ["user", "assistant", "user", "assistant"]


def test_json_that_breaks_off_is_cut_and_its_cut_turn_dropped():
    cut = JSON_TURNS[: JSON_TURNS.rindex("فذلك")]
    parsed = parse(cut)
    assert parsed.cut and parsed.messages[-1]["content"].startswith("اقطف القمم")
    assert reasons_of(cut, "length") == ["truncated", "too_few_exchanges"]
    extra = JSON_TURNS[:-1] + ', {"role": "user", "content": "وهل'
    messages, _, reasons, trimmed, _, _ = decide({"raw_text": extra, "finish_reason": "length"}, PARAMS)
    assert trimmed and reasons == [] and len(messages) == 4
    stray_comma = parse(JSON_TURNS[:-1] + ",]")  # whole, with a stray comma: nothing cut
    assert not stray_comma.cut and stray_comma.messages == parse_dialogue(GOOD)
    wrapped = parse('```json\n{"messages": ' + cut)  # cut inside {"messages": [...]}
    assert wrapped.cut and [m["role"] for m in wrapped.messages] == ["user", "assistant", "user", "assistant"]


def test_a_dialogue_on_one_line_is_read_from_its_inline_labels_but_narrative_is_not():
    one_line = GOOD.replace("\n", " ")
    assert parse_dialogue(one_line) == parse_dialogue(GOOD)
    labels = "المستخدم: كيف أحافظ على الريحان؟ المساعد: ضعه قرب نافذة مشمسة. المستخدم: وكم مرة أسقيه؟ المساعد: حين تجف التربة."
    assert [t["role"] for t in parse_dialogue(labels)] == ["user", "assistant", "user", "assistant"]
    narrative = "دار حوار قصير، فقال المستخدم: كيف أنام جيدًا؟ فأجاب المساعد: نم في موعد ثابت كل يوم."
    assert reasons_of(narrative) == ["unparseable"]


def test_an_assistant_that_repeats_the_question_or_recites_its_instructions_is_echo():
    repeat = GOOD.replace("اقطف القمم كل أسبوع تقريبًا، فذلك يشجع النبتة على التفرع.", "وكم مرة أقطف أوراقها")
    assert reasons_of(repeat) == ["echo"]
    restated = GOOD.replace("اقطف القمم", "سؤالك هو: وكم مرة أقطف أوراقها؟ اقطف القمم")
    assert reasons_of(restated) == []  # the question restated, then answered
    assert reasons_of(GOOD.replace("ضعها قرب نافذة", "المطلوب: نافذة مشمسة، ضعها قرب نافذة")) == []
    confirmed = ("User: المتحف مفتوح يوم الجمعة؟\nAssistant: نعم، المتحف مفتوح يوم الجمعة.\n"
                 "User: ومتى يفتح؟\nAssistant: يفتح من الساعة التاسعة صباحًا حتى الخامسة مساءً.")
    assert reasons_of(confirmed) == []  # a yes makes the restated question an answer
    for recital in ("أنت مساعد مفيد، اكتب محادثة واقعية بين مستخدم ومساعد عن الزراعة المنزلية.",
                    "بصفتي مساعدًا، تعليماتي: أجب عن أسئلة المستخدم بإيجاز ولا تذكر أنك نموذج ذكاء اصطناعي.",
                    "المطلوب: كتابة محادثة متعددة الجولات عن الحدائق المنزلية."):
        reasons = reasons_of(GOOD.replace("ضعها قرب نافذة مشمسة واسقها حين تجف التربة من الأعلى.", recital))
        assert reasons[0] == "echo", recital
    prompt = "اكتب محادثة بين مستخدم ومساعد عن العناية بالنباتات المنزلية في الشقق الصغيرة بأسلوب ودود"
    recited = GOOD.replace("ضعها قرب نافذة مشمسة واسقها حين تجف التربة من الأعلى.",
                           "عن العناية بالنباتات المنزلية في الشقق الصغيرة بأسلوب ودود.")
    assert decide({"raw_text": recited, "finish_reason": "stop", "prompt": prompt}, PARAMS)[2] == ["echo"]
    assert reasons_of(recited) == []  # without the prompt nothing says it was recited
    inside = GOOD.replace("فذلك يشجع النبتة على التفرع.", "فذلك يشجع النبتة على التفرع، عن العناية بالنباتات "
                                                        "المنزلية في الشقق الصغيرة بأسلوب ودود.")
    assert decide({"raw_text": inside, "finish_reason": "stop", "prompt": prompt}, PARAMS)[2] == ["echo"]


def test_cut_last_turns_are_seen_whatever_the_finish_reason_and_sign_offs_are_not_cuts():
    others = ["سؤال؟", "جواب تام.", "سؤال آخر؟"]
    assert looks_cut("وما هي أفضل", others, unanswered=True)
    assert reasons_of(GOOD + "\n[|Human|] وما هي أفضل") == []  # the unanswered cut question is trimmed
    long_ending = "خذ نفسًا عميقًا وابدأ بالسؤال الذي تعرفه جيدًا ثم انتقل إلى بقية الأسئلة بهدوء"
    assert looks_cut(long_ending, others)
    assert not looks_cut(long_ending + ". بالتوفيق", others) and not looks_cut(long_ending + ". وصحتين", others)


def test_latin_names_glued_to_arabic_prefixes_are_names_and_their_share_is_capped():
    turn = "يتميز Xbox بخدمة Game Pass، وفيه ألعاب حصرية مثل Spider-Man 2 وGod of War Ragnarök و16GB من الذاكرة."
    assert latin_prose_words(turn) == []
    names = "أنصحك بـ Samsung Galaxy S24 Ultra أو Google Pixel 8 Pro أو iPhone 15 Pro Max أو OnePlus 12 Pro Max"
    listed = GOOD.replace("ضعها قرب نافذة مشمسة واسقها حين تجف التربة من الأعلى", names)
    assert reasons_of(listed) == ["low_arabic_ratio"]  # names are neutral up to half the letters, not beyond
    loose = PARAMS.model_copy(update={"max_name_share": 1.0})
    assert decide({"raw_text": listed, "finish_reason": "stop"}, loose)[2] == []
