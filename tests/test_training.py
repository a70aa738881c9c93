"""Fine-tuning: labels on three kinds of tokenizer, resume after an interruption, deterministic LoRA, merged
and unmerged outputs."""

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, TrainerCallback

from hiwar.training.chat_format import END, add_chat_format, encode, trained_text
from hiwar.standins import text_corpus
from hiwar.training.models import load_finetuned
from hiwar.training.trainer import finetune


def sentencepiece_style(texts):
    """A Unigram tokenizer with SentencePiece's metaspace (▁) convention, as in Llama 2 or mT5."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=800, special_tokens=["<unk>", "</s>"],
                                                            unk_token="<unk>", show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")


@pytest.fixture(scope="module")
def data(corpus_frame):
    return corpus_frame(0, 24), corpus_frame(24, 28)


@pytest.mark.parametrize("kind", ["byte_level_bpe", "sentencepiece_unigram", "standin_reloaded"])
def test_labels_decode_to_exactly_the_assistant_turns(kind, bundled, bpe_tokenizer, base_dir, tmp_path):
    if kind == "byte_level_bpe":
        tokenizer = bpe_tokenizer
    elif kind == "sentencepiece_unigram":
        tokenizer = sentencepiece_style(text_corpus(bundled))
        add_chat_format(tokenizer)
    else:  # the stand-in's own tokenizer, after a save/load round trip with its chat template
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        add_chat_format(tokenizer)
        tokenizer.save_pretrained(tmp_path)
        tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    for conv in bundled.conversations[:12]:
        enc = encode(tokenizer, conv["messages"], 10_000)
        runs = trained_text(tokenizer, enc.labels)
        expected = [m["content"] + END for m in conv["messages"] if m["role"] == "assistant"]
        if kind == "sentencepiece_unigram":  # metaspace decoding drops the space a turn starts with
            runs, expected = [r.strip() for r in runs], [e.strip() for e in expected]
        assert runs == expected


class Interrupt(TrainerCallback):
    """Stops the run with an error after `step` optimizer steps, as a kill would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def weights(path):
    return load_file(str(path / "model.safetensors"))


def test_interrupted_run_resumes_to_the_same_weights(base_dir, data, tmp_path, finetune_spec):
    train, validation = data
    spec = finetune_spec(base_dir)
    finetune(spec, train, validation, tmp_path / "straight", tmp_path / "ck1", seed=3)
    with pytest.raises(KeyboardInterrupt):
        finetune(spec, train, validation, tmp_path / "resumed", tmp_path / "ck2", seed=3, callbacks=[Interrupt(5)])
    assert (tmp_path / "ck2" / "checkpoint-4").is_dir()
    metrics = finetune(spec, train, validation, tmp_path / "resumed", tmp_path / "ck2", seed=3)
    assert metrics["resumed_from_step"] == 4
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_checkpoints_of_other_params_are_not_resumed(base_dir, data, tmp_path, finetune_spec):
    train, validation = data
    with pytest.raises(KeyboardInterrupt):
        finetune(finetune_spec(base_dir), train, validation, tmp_path / "a", tmp_path / "ck", seed=3, callbacks=[Interrupt(3)])
    metrics = finetune(finetune_spec(base_dir, learning_rate=2e-3), train, validation, tmp_path / "b", tmp_path / "ck", seed=3)
    assert metrics["resumed_from_step"] == 0


def test_lora_runs_with_the_same_seed_give_identical_adapters(base_dir, data, tmp_path, finetune_spec):
    train, validation = data
    spec = finetune_spec(base_dir, method="lora", merge=False, epochs=1)
    for run in ("one", "two"):
        finetune(spec, train, validation, tmp_path / run, tmp_path / f"ck-{run}", seed=7)
    a = load_file(str(tmp_path / "one/adapter/adapter_model.safetensors"))
    b = load_file(str(tmp_path / "two/adapter/adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any((tmp_path / "one").glob("*.safetensors"))  # merge: false keeps only the adapter
    tokenizer, model = load_finetuned(tmp_path / "one", spec, seed=7)
    assert tokenizer.chat_template and model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_merged_lora_matches_base_plus_adapter(base_dir, data, tmp_path, short_conversation, finetune_spec):
    train, validation = (frame.assign(messages=[m[:2] for m in frame["messages"]]) for frame in data)  # one exchange each
    spec = finetune_spec(base_dir, method="lora", merge=True, epochs=1, packing=True, max_length=1024)
    metrics = finetune(spec, train, validation, tmp_path / "out", tmp_path / "ck", seed=7)
    assert metrics["train"]["packed_rows"] < metrics["train"]["examples"]
    assert metrics["attention"] == "hiwar_packed"
    tokenizer, merged = load_finetuned(tmp_path / "out")
    enc = encode(tokenizer, short_conversation, 10_000)
    ids = torch.tensor([enc.input_ids])
    from peft import PeftModel

    from hiwar.training.models import load_base

    _, base = load_base(spec, 7)
    adapted = PeftModel.from_pretrained(base, tmp_path / "out" / "adapter")
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)


def test_chat_keeps_the_history_and_resets_it(base_dir, data, tmp_path, monkeypatch, finetune_spec):
    from click.testing import CliRunner

    import hiwar.evaluation.metrics
    from hiwar.cli import main

    train, validation = data
    finetune(finetune_spec(base_dir, epochs=1), train, validation, tmp_path / "model", tmp_path / "ck", seed=1)
    seen, real = [], hiwar.evaluation.metrics.generate_replies
    monkeypatch.setattr(hiwar.evaluation.metrics, "generate_replies",
                        lambda model, tok, histories, *a, **k: seen.append([m["role"] for m in histories[0]]) or
                        real(model, tok, histories, *a, **k))
    result = CliRunner().invoke(main, ["chat", str(tmp_path / "model"), "--max-new-tokens", "5", "--rtl", "plain"],
                                input="ما عاصمة المغرب؟\nوما أشهر مدنها؟\n/reset\nشكرًا\n\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("المساعد: ") == 3
    assert seen == [["user"], ["user", "assistant", "user"], ["user"]]


def test_too_few_rows_for_one_batch_stop_with_one_line_instead_of_a_trainer_error(base_dir, data, tmp_path,
                                                                                   finetune_spec):
    from hiwar.errors import HiwarError

    train, validation = data
    spec = finetune_spec(base_dir, method="lora", epochs=1, packing=True, max_length=1024, batch_size=8)
    with pytest.raises(HiwarError, match=r"finetune\.models\.tiny: \d training row\(s\) after packing make no batch "
                                         r"of 8 x 1 process\(es\)"):
        finetune(spec, train.head(2), validation, tmp_path / "out", tmp_path / "ck", seed=7, name="tiny")
    assert not (tmp_path / "out").exists()
