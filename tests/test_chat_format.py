import pytest

from hiwar.training.chat_format import END, IGNORE, USER, assistant_spans, encode, render, trained_text


def test_decoded_labels_are_exactly_the_assistant_turns_with_end_markers(bpe_tokenizer, short_conversation):
    enc = encode(bpe_tokenizer, short_conversation, max_length=10_000)
    expected = [m["content"] + END for m in short_conversation if m["role"] == "assistant"]
    assert trained_text(bpe_tokenizer, enc.labels) == expected


def test_seed_conversations_mask_correctly(bpe_tokenizer, bundled):
    for conv in bundled.conversations[:20]:
        messages = conv["messages"]
        enc = encode(bpe_tokenizer, messages, max_length=10_000)
        assert trained_text(bpe_tokenizer, enc.labels) == [m["content"] + END for m in messages if m["role"] == "assistant"]


def test_user_turns_and_markers_are_never_trained(bpe_tokenizer, short_conversation):
    enc = encode(bpe_tokenizer, short_conversation, max_length=10_000)
    user_id = bpe_tokenizer.convert_tokens_to_ids(USER)
    assert all(label != user_id for label in enc.labels)
    assert 0 < sum(l != IGNORE for l in enc.labels) < len(enc.labels)


def test_spans_follow_prefix_rendering(bpe_tokenizer, short_conversation):
    full, spans = assistant_spans(bpe_tokenizer, short_conversation)
    assert full == render(bpe_tokenizer, short_conversation)
    assert [full[a:b] for a, b in spans] == [m["content"] + END for m in short_conversation[1::2]]


def test_truncation_drops_whole_exchanges_from_the_end(bpe_tokenizer, short_conversation):
    full_len = len(encode(bpe_tokenizer, short_conversation, 10_000).input_ids)
    first_len = len(encode(bpe_tokenizer, short_conversation[:2], 10_000).input_ids)
    enc = encode(bpe_tokenizer, short_conversation, max_length=full_len - 1)
    assert enc.exchanges_dropped == 1 and len(enc.input_ids) == first_len
    assert encode(bpe_tokenizer, short_conversation, max_length=first_len - 1) is None


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "أجب باختصار."}, {"role": "user", "content": "ما لون السماء؟"},
     {"role": "assistant", "content": "زرقاء في النهار."}],
])
def test_system_message_is_context_not_target(bpe_tokenizer, messages):
    enc = encode(bpe_tokenizer, messages, max_length=10_000)
    assert trained_text(bpe_tokenizer, enc.labels) == ["زرقاء في النهار." + END]
