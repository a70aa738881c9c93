"""Loading, saving and LoRA-wrapping models for fine-tuning, evaluation and chat.

Base models get hiwar's chat format on load unless they keep their own template (training.chat_format); a fine-tuned folder holds merged weights,
or a LoRA adapter that is applied to its base. Imports of transformers and peft stay inside the functions, so
importing this module is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hiwar.errors import HiwarError
from hiwar.params.finetune import FinetuneModel
from hiwar.training.chat_format import ROLE_TOKENS, end_of_turn, prepare_chat_format, uses_hiwar_format


def load_base(spec: FinetuneModel, seed: int):
    """Base tokenizer and model in the chat format `spec.chat_format` picks: hiwar's (added, seeded, so every
    stage gets the same new rows) or the model's own template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    prepare_chat_format(tokenizer, model, spec.chat_format)
    return tokenizer, model


def load_pretrained(path: str, trust_remote_code: bool):
    """A model as published, with its own tokenizer and chat template (baselines, instruct models)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"trust_remote_code": trust_remote_code}
    return AutoTokenizer.from_pretrained(path, **kwargs), AutoModelForCausalLM.from_pretrained(path, **kwargs)


def load_finetuned(model_dir: str | Path, spec: FinetuneModel | None = None, seed: int = 0):
    """A fine-tuned model directory: merged weights when present, else the base plus its LoRA adapter."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if any(model_dir.glob("*.safetensors")):
        return tokenizer, AutoModelForCausalLM.from_pretrained(model_dir)
    from peft import PeftModel

    if spec is None:
        raise HiwarError(f"{model_dir}: no merged weights (a LoRA adapter only); set `merge: true` for this model, "
                         "or load it with its base model's params")
    _, base = load_base(spec, seed)
    return tokenizer, PeftModel.from_pretrained(base, model_dir / "adapter")


def wrap_lora(model, tokenizer, spec: FinetuneModel):
    from peft import LoraConfig, get_peft_model

    # hiwar's role markers are new tokens: their embeddings must learn too, or the model never learns to read
    # the format or to end its turn. A model's own template uses tokens it was trained with.
    new_tokens = {"trainable_token_indices": tokenizer.convert_tokens_to_ids(ROLE_TOKENS)} \
        if uses_hiwar_format(tokenizer) else {}
    config = LoraConfig(
        r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
        target_modules=list(spec.lora_target_modules), task_type="CAUSAL_LM", **new_tokens,
    )
    return get_peft_model(model, config)


def save(model, tokenizer, spec: FinetuneModel, out_dir: Path, state_dict: dict | None = None) -> None:
    """The tokenizer with its chat template, and the weights: a LoRA adapter (plus a merged copy when
    `merge` is set) or the full model. Generation stops at the end-of-turn marker the model learnt.
    `state_dict`: weights gathered from FSDP shards, for a full fine-tune."""
    end_id = tokenizer.convert_tokens_to_ids(end_of_turn(tokenizer))
    if spec.method == "lora":
        model.save_pretrained(out_dir / "adapter")
        # peft writes target_modules from a set, in an order that changes between runs: sort it so that the
        # same training gives the same bytes (and the same DVC hash).
        config = out_dir / "adapter/adapter_config.json"
        data = json.loads(config.read_text(encoding="utf-8"))
        if isinstance(data.get("target_modules"), list):
            data["target_modules"] = sorted(data["target_modules"])
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if not spec.merge:
            tokenizer.save_pretrained(out_dir)
            return
        model = model.merge_and_unload()
    model.generation_config.eos_token_id = end_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, **({"state_dict": state_dict} if state_dict and spec.method == "full" else {}))
    tokenizer.save_pretrained(out_dir)
