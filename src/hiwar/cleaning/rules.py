"""The checks a parsed conversation must pass. Each returns reason codes; a conversation is kept only when
no rule gives one. Thresholds come from params (`clean`); the phrase lists are data, here.

Phrases are matched on `arabic.normalize`d, lower-cased text, so they are written in normalised form
(no hamza on alef, ي for ى, no tashkeel).
"""

from __future__ import annotations

import re

from hiwar.arabic import LETTERS, arabic_ratio_with_names, latin_words, match_key, normalize, strip_latin_names
from hiwar.errors import HiwarError
from hiwar.params.clean import CleanParams

PLACEHOLDERS = {"", "...", "…", "[...]", "<...>", "(فارغ)", "[النص هنا]", "todo", "n/a", "؟؟؟", "???"}

# The order of causes: a rejected row's first reason is the one that explains the others (a cut
# generation, then what the model wrote instead of a dialogue, then the dialogue's shape, then its turns).
# `not_arabic` (the conversation is in another language) comes before what is wrong inside it; `echo` (an
# assistant that repeats the question or recites its instructions) before `meta_talk`, which reciting often
# brings along ("as an assistant, my instructions are ...").
CAUSES = ["generation_failed", "empty_output", "truncated", "unparseable", "not_arabic", "refusal", "echo", "meta_talk",
          "placeholder", "low_arabic_ratio", "latin_leakage", "repetition", "empty_turn", "bad_alternation",
          "too_few_exchanges", "too_many_exchanges", "turn_too_long", "turn_too_short", "exact_duplicate",
          "near_duplicate"]

# An unfilled template slot: a few words in [..], {..}, {{..}} or <..> naming what should have been written
# there (a name, a date, a place, a number), in Arabic or Latin letters. Matched on match_key text.
_SLOT_WORDS = (r"(?:ال|و|ب|ل)?(?:اسم|تاريخ|مكان|مدينه|بلد|دوله|رقم|عنوان|مبلغ|سعر|شركه|منتج|وقت|ساعه|يوم|شهر"
               r"|سنه|عام|بريد|هاتف|جوال|موقع|شارع|مستشفي|جامعه|مدرسه|طبيب|شخص|فلان|هنا|ادخل|ضع|اكتب|المستخدم)"
               r"|name|date|place|city|country|number|phone|address|amount|price|company|product|time|day|month|year"
               r"|age|email|location|insert|placeholder|your|user|x{2,}|_+")
PLACEHOLDER = re.compile(
    r"(?:\[|\{\{?|<)\s*([^\[\]{}<>()\d\n]{1,40}?)\s*(?:\]|\}\}?|>)(?!\()")
_SLOT = re.compile(rf"(?:^|[\s_])(?:{_SLOT_WORDS})", re.IGNORECASE)

WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more, in any script
MOSTLY_ARABIC = 0.5  # a turn with Latin prose is `latin_leakage` if at least this share of its letters is Arabic
QUESTION = re.compile(r"[؟?]")

# An assistant turn that opens by declining.
REFUSAL = re.compile("|".join(f"(?:{p})" for p in (
    r"^(عذرا|اسف|اعتذر|للاسف)[^.؟!\n]{0,40}?(لا|لن) (استطيع|يمكنني|يسعني|اقدر)",
    r"^(لا|لن) (استطيع|يمكنني|يسعني) (مساعدتك|المساعده|الاجابه|تقديم|الرد)",
    r"^(i'?m sorry|sorry|i apologi[sz]e)\b.{0,60}?\b(can ?not|can'?t|am unable|won'?t)\b",
    r"^i (can ?not|can'?t|am unable to|won'?t) (help|assist|answer|provide|do)\b",
)))

# Talk about being an AI, or about the dialogue-writing task, in any turn.
META_TALK = re.compile("|".join(f"(?:{p})" for p in (
    r"نموذجا? لغوي", r"نموذجا? (لغه|ذكاء)", r"(بصفتي|كوني|ك) ?ذكاء ?ا? اصطناعي",
    r"(بصفتي|كوني) (مساعدا|نموذجا|برنامجا)", r"انا (مجرد )?(برنامج|نموذج|ذكاء اصطناعي)",
    r"اليك (المحادثه|محادثه|الحوار)", r"المحادثه المطلوبه", r"نهايه (المحادثه|الحوار)",
    r"(كتبت|صغت|اعددت|انشات) (لك )?(هذه |هذا )?(المحادثه|الحوار)", r"كما طلبت في (التعليمات|الطلب|السؤال)",
    r"\bi (wrote|have written|created) (this|the) (conversation|dialogue)\b",
    r"\bas an ai\b", r"\blanguage model\b", r"\bas an assistant\b", r"\bhere is (the|a) (conversation|dialogue)\b",
    r"\bend of (the )?(conversation|dialogue)\b",
)))


# An assistant turn that recites its system prompt or the generation task instead of answering (matched on
# match_key text, so teh marbuta is ه): "أنت مساعد ...", "تعليماتي هي ...", "المطلوب: كتابة محادثة ...",
# "اكتب محادثة ... بين مستخدم ومساعد ...", "محادثة بين مستخدم ومساعد عن ...".
INSTRUCTIONS = re.compile("|".join(f"(?:{p})" for p in (
    r"^(انت|انتي) (مساعد|نموذج|روبوت|خبير)", r"تعليماتي( هي|:| ان)",
    r"^المطلوب ?: ?(منك )?(كتابه|انشاء|توليد|صياغه|اكتب|محادثه|حوار)",  # not "المطلوب: جواز سفر وصورتان"
    r"(اكتب|كتابه|انشئ|انشاء|توليد|صياغه) (محادثه|حوار)[^.؟!\n]{0,80}(بين|مستخدم|مساعد|جولات|تبادلات)",
    r"(محادثه|حوار) (متعدده الجولات )?بين (ال)?مستخدم و ?(ال)?مساعد (عن|حول|في موضوع)",  # the task, recited
    r"(تحتوي|تتكون|تبدا) المحادثه (علي|من|ب)",
    r"^you are an? (helpful |friendly |smart |ai )*(assistant|ai|chatbot)\b", r"\bmy instructions (are|say)\b",
    r"\bsystem prompt\b", r"\bwrite an? (multi-turn )?(conversation|dialogue) between\b",
)))
# What an echo may add to the question it repeats: "سؤالك هو: ..." ("your question is: ...").
ECHO_EXTRA_WORDS = 3
TEXT_WORD = re.compile(r"\w+")
# Words that make a restated question an answer ("المتحف مفتوح يوم الجمعة؟" "نعم، المتحف مفتوح يوم الجمعة.").
ANSWER_WORDS = frozenset("نعم لا اجل بلي طبعا اكيد ايوه اه ايه صح مظبوط yes no sure".split())


def repeats(answer: str, question: str) -> bool:
    """Whether an answer (match_key) is the question (match_key) again: at least 90% of the question's words
    (3 or more), with at most ECHO_EXTRA_WORDS other words, none of them a yes or no."""
    asked, said = TEXT_WORD.findall(question), TEXT_WORD.findall(answer)
    if len(asked) < 3 or not said:
        return False
    pool, asked_set = set(said), set(asked)
    covered = sum(w in pool for w in asked)
    extra = [w for w in said if w not in asked_set]
    return covered >= 0.9 * len(asked) and len(extra) <= ECHO_EXTRA_WORDS and not ANSWER_WORDS & set(extra)


def recites(answer: str, prompt_key: str | None, n: int = 4, span: int = 8) -> bool:
    """Whether an answer recites the prompt (both match_keys): half its word n-grams or more come from it, or
    it repeats `span` words of the prompt in a row."""
    if not prompt_key:
        return False
    words, source = TEXT_WORD.findall(answer), TEXT_WORD.findall(prompt_key)
    grams = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    if len(grams) < 4:
        return False
    prompt_grams = {tuple(source[i:i + n]) for i in range(len(source) - n + 1)}
    if len(grams & prompt_grams) >= 0.5 * len(grams):
        return True
    prompt_spans = {tuple(source[i:i + span]) for i in range(len(source) - span + 1)}
    return any(tuple(words[i:i + span]) in prompt_spans for i in range(len(words) - span + 1))


def echo(messages: list[dict], keys: list[str], prompt_key: str | None = None) -> list[str]:
    """`echo` when an assistant turn repeats the user turn before it, or recites its instructions, its system
    prompt or the generation prompt (when known) instead of answering."""
    for i, (m, key) in enumerate(zip(messages, keys)):
        if m["role"] != "assistant":
            continue
        if (i and messages[i - 1]["role"] == "user" and repeats(key, keys[i - 1])) or INSTRUCTIONS.search(key) \
                or recites(key, prompt_key):
            return ["echo"]
    return []


def has_placeholder(key: str) -> bool:
    return any(len(m.group(1).split()) <= 5 and _SLOT.search(m.group(1)) for m in PLACEHOLDER.finditer(key))


def by_cause(reasons) -> list[str]:
    return sorted(set(reasons), key=CAUSES.index)


def repeated_ngram_ratio(key: str, n: int) -> float:
    """Share of a text's word n-grams that repeat an earlier n-gram of the same text (given its match_key)."""
    words = key.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def structure(messages: list[dict], params: CleanParams) -> list[str]:
    roles = [m["role"] for m in messages]
    reasons = []
    if len(roles) % 2 or any(role != ("user", "assistant")[i % 2] for i, role in enumerate(roles)):
        reasons.append("bad_alternation")
    exchanges = roles.count("assistant")
    if exchanges < params.min_exchanges:
        reasons.append("too_few_exchanges")
    if exchanges > params.max_exchanges:
        reasons.append("too_many_exchanges")
    return reasons


def turn_content(messages: list[dict], keys: list[str], params: CleanParams) -> list[str]:
    reasons = set()
    for i, (m, key) in enumerate(zip(messages, keys)):
        text = m["content"].strip()
        previous_turn = messages[i - 1]["content"] if i else ""
        if text.lower() in PLACEHOLDERS:
            reasons.add("empty_turn")
            continue
        # A short turn is fine when it is a word (a closing thanks, a one-word dialect reply, "you're
        # welcome"); too short means no word at all, or an assistant's word or two in answer to a question.
        if len(text) < params.min_turn_chars and (not WORD.search(text) or (
                m["role"] == "assistant" and QUESTION.search(previous_turn))):
            reasons.add("turn_too_short")
        if len(text) > params.max_turn_chars:
            reasons.add("turn_too_long")
        # Latin names, addresses and terms are normal Arabic writing; Latin prose inside a mostly Arabic
        # turn is leakage; a turn that is not mostly Arabic (English, French, no Arabic) is low_arabic_ratio.
        prose = strip_latin_names(text)
        ratio = arabic_ratio_with_names(text, prose, params.max_name_share)
        if len(latin_words(prose)) > params.max_latin_words and ratio >= MOSTLY_ARABIC:
            reasons.add("latin_leakage")
        elif WORD.search(text) and ratio < params.min_arabic_ratio:
            reasons.add("low_arabic_ratio")
        if has_placeholder(key):
            reasons.add("placeholder")
        if len(key.split()) >= params.repetition_min_words and \
                repeated_ngram_ratio(key, params.repetition_ngram) > params.max_repeated_ngram_ratio:
            reasons.add("repetition")
    answers = [key for m, key in zip(messages, keys) if m["role"] == "assistant"]
    if len(set(answers)) < len(answers):
        reasons.add("repetition")
    return list(reasons)


def refusal_and_meta(messages: list[dict], keys: list[str]) -> list[str]:
    reasons = set()
    for m, key in zip(messages, keys):
        if m["role"] == "assistant" and REFUSAL.search(key):
            reasons.add("refusal")
        if META_TALK.search(key):
            reasons.add("meta_talk")
    return sorted(reasons)


def check(messages: list[dict], params: CleanParams, keys: list[str] | None = None, prompt: str | None = None
          ) -> list[str]:
    """All reason codes that apply to a parsed conversation (empty when it passes), the real cause first.
    `keys` are the turns' match_keys when the caller already has them; `prompt` is the generation prompt,
    when known (an answer that recites it is `echo`). The language (`not_arabic`) is judged apart
    (cleaning.language), as it needs a model."""
    if not messages:
        return ["unparseable"]
    keys = keys if keys is not None else [match_key(m["content"]) for m in messages]
    found = by_cause(structure(messages, params) + turn_content(messages, keys, params) + refusal_and_meta(messages, keys)
                     + echo(messages, keys, match_key(prompt) if prompt else None))
    return [r for r in found if r not in params.skip_reasons] if params.skip_reasons else found


def check_skipped(params: CleanParams) -> None:
    """clean.skip_reasons may name only the rules' own reason codes."""
    unknown = [r for r in params.skip_reasons if r not in CAUSES]
    if unknown:
        raise HiwarError(f"params.yaml: clean.skip_reasons: unknown reason {unknown[0]!r} (expected reason codes of "
                         f"the rules: {', '.join(CAUSES)})")
