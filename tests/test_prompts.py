import pytest

from hiwar.errors import HiwarError
from hiwar.generation.prompts import AI, HUMAN, format_dialogue, render_prompt

ARGS = dict(topic_ar="الطبخ", topic_description="وصفات وأطباق", country_ar="المغرب", persona_ar="طالب جامعي", exchanges=4)


def test_tiny_template_ends_where_the_dialogue_starts():
    prompt = render_prompt("tiny", **ARGS)
    assert prompt.startswith("<|prompt|>") and prompt.endswith("<|response|>")
    assert "الطبخ" in prompt and "المغرب" in prompt and "طالب جامعي" in prompt
    assert "عدد التبادلات: 4." in prompt
    seven = render_prompt("tiny", **dict(ARGS, exchanges=7))
    assert "عدد التبادلات: 7." in seven and "4" not in seven  # the number comes from the argument


def test_jais_template_has_the_instruction_wrapper():
    prompt = render_prompt("jais", **ARGS)
    assert prompt.startswith("### Instruction:")
    assert "### Input: [|Human|]" in prompt and prompt.endswith("### Response: [|AI|]")


def test_optional_parts_disappear_when_absent():
    prompt = render_prompt("tiny", **dict(ARGS, country_ar=None, persona_ar=None))
    assert "تدور المحادثة" not in prompt and "المستخدم طالب" not in prompt


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(HiwarError, match="expected one of: chat, jais, tiny"):
        render_prompt("vicuna", **ARGS)


def test_format_dialogue_labels_every_turn(short_conversation):
    lines = format_dialogue(short_conversation).splitlines()
    assert [line.split()[0] for line in lines] == [HUMAN, AI, HUMAN, AI]


def test_few_shot_examples_need_a_template_that_shows_them():
    with pytest.raises(HiwarError, match="generate.few_shot: template 'tiny' shows no examples"):
        render_prompt("tiny", **ARGS, examples=["[|Human|] س\n[|AI|] ج"])
    shown = render_prompt("jais", **ARGS, examples=["[|Human|] سؤال المثال\n[|AI|] جواب المثال"])
    assert "مثال 1:\n[|Human|] سؤال المثال" in shown and shown.endswith("### Response: [|AI|]")


def test_few_shot_examples_prefer_the_rows_topic(bundled):
    from hiwar.generation.driver import few_shot_examples

    topic = bundled.conversations[0]["topic"]
    on_topic = {format_dialogue(c["messages"]) for c in bundled.conversations if c["topic"] == topic}
    picked = few_shot_examples(bundled.conversations, topic, 1, salt="row-1")
    assert picked[0] in on_topic and picked == few_shot_examples(bundled.conversations, topic, 1, salt="row-1")
    assert len(few_shot_examples(bundled.conversations, topic, len(on_topic) + 2, salt="row-1")) == len(on_topic) + 2
