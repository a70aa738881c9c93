"""Real models beside the stand-ins: GGUF import, instruct models trained in their own chat template, and
truncation that is reported and, above a threshold, stops fine-tuning before anything is written."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from transformers import AutoTokenizer

from hiwar.errors import HiwarError
from hiwar.params import FinetuneModel
from hiwar.training.chat_format import END, encode, end_of_turn, prepare_chat_format, trained_text
from hiwar.training.data import encode_split, max_length_for

# ChatML as Qwen and SmolLM2 write it: a newline after every <|im_end|>, which is layout, not reply.
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture
def chatml_tokenizer(base_dir):
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    return tokenizer


def tokenizer_of(path):
    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_chat_format(tokenizer, None, "auto")
    return tokenizer


def frame_of(bundled, n):
    return pd.DataFrame({"conversation_id": [c["id"] for c in bundled.conversations[:n]],
                         "messages": [c["messages"] for c in bundled.conversations[:n]]})


def test_own_template_labels_are_the_assistant_turns_and_im_end(chatml_tokenizer, bundled):
    assert prepare_chat_format(chatml_tokenizer, None, "auto") == "own"
    assert end_of_turn(chatml_tokenizer) == "<|im_end|>"
    for conv in bundled.conversations[:12]:
        runs = trained_text(chatml_tokenizer, encode(chatml_tokenizer, conv["messages"], 10_000).labels)
        assert runs == [m["content"] + "<|im_end|>" for m in conv["messages"] if m["role"] == "assistant"]


def test_auto_gives_a_base_model_hiwars_format(base_dir):
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    assert prepare_chat_format(tokenizer, None, "auto") == "hiwar"
    assert end_of_turn(tokenizer) == END
    with pytest.raises(HiwarError, match="no chat template"):
        prepare_chat_format(AutoTokenizer.from_pretrained(base_dir), None, "own")


def test_template_whose_turns_end_in_plain_text_is_refused(base_dir):
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}" \
                              "{% if add_generation_prompt %}assistant: {% endif %}"
    with pytest.raises(HiwarError, match="not a special token"):
        prepare_chat_format(tokenizer, None, "own")


def test_truncation_counts_add_up_and_the_suggested_max_length_keeps_the_share(bpe_tokenizer, bundled):
    frame = frame_of(bundled, 30)
    _, full = encode_split(bpe_tokenizer, frame, 10**6)
    assert full["exchanges_dropped"] == 0 and full["assistant_tokens_dropped_share"] == 0
    assert full["exchanges"] == sum(m["role"] == "assistant" for c in frame["messages"] for m in c)
    assert 1 < full["tokens_per_word"] < 10  # a BPE trained on this Arabic text: a few pieces per word
    _, cut = encode_split(bpe_tokenizer, frame, 200)
    assert cut["exchanges_dropped_share"] > 0.3
    needed = max_length_for(bpe_tokenizer, frame, 0.10)
    _, kept = encode_split(bpe_tokenizer, frame, needed)
    assert kept["exchanges_dropped_share"] <= 0.10 and kept["assistant_tokens_dropped_share"] <= 0.10
    _, under = encode_split(bpe_tokenizer, frame, needed - 1)  # the smallest such length: one less fails
    assert max(under["exchanges_dropped_share"], under["assistant_tokens_dropped_share"]) > 0.10


def test_finetune_stage_stops_before_training_when_truncation_drops_too_much(root, base_dir, bundled, tmp_path,
                                                                             params_data):
    """The stage run as DVC runs it, in a scratch project: one line naming the model, the share and the
    max_length that would do, exit 2, and no model, metrics, curves or checkpoints written."""
    (tmp_path / "data/split").mkdir(parents=True)
    frame = frame_of(bundled, 24).assign(messages=lambda f: [m[:4] for m in f["messages"]])  # two exchanges each
    frame.to_parquet(tmp_path / "data/split/train.parquet")
    frame.iloc[:4].to_parquet(tmp_path / "data/split/validation.parquet")
    spec = dict(params_data["finetune"]["models"]["tiny_aragpt2"], path=str(base_dir), max_length=300)
    params = dict(params_data, finetune=dict(params_data["finetune"], models={"short": spec}))
    (tmp_path / "params.yaml").write_text(json.dumps(params, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run([sys.executable, str(root / "stages/finetune.py"), "short"], cwd=tmp_path,
                            capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(root / "src")})
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: finetune.models.short: max_length 300 drops ")
    assert "above finetune.max_dropped_share 10%" in line
    assert line.endswith("set finetune.models.short.max_length to at least 435")  # computed independently below
    _, counts = encode_split(tokenizer_of(base_dir), frame, 435)
    assert max(counts["exchanges_dropped_share"], counts["assistant_tokens_dropped_share"]) <= 0.10
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["data/split/train.parquet", "data/split/validation.parquet", "params.yaml"]
    assert not any((tmp_path / d).exists() for d in ("checkpoints", "dvclive", "metrics", "logs"))
