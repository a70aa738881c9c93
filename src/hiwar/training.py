"""Fine-tuning a base model on the generated conversations, with loss on assistant tokens only.

Thin on purpose: the HF Trainer does the loop (seeding, length-grouped batches, bf16 where supported,
multi-GPU under `accelerate launch`); hiwar supplies the chat format, the labels and the bookkeeping.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from hiwar.chat_format import END, IGNORE, ROLE_TOKENS, add_chat_format, encode
from hiwar.params import FinetuneModel


def load_base(spec: FinetuneModel, seed: int):
    """Base tokenizer and model with hiwar's chat format added (seeded, so every stage gets the same rows)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    add_chat_format(tokenizer, model)
    return tokenizer, model


def encode_split(tokenizer, frame: pd.DataFrame, max_length: int) -> tuple[list[dict], dict]:
    """Encoded examples plus counts of what truncation did (see chat_format.encode for the rule)."""
    examples, skipped, dropped = [], 0, 0
    for messages in frame["messages"]:
        enc = encode(tokenizer, [dict(m) for m in messages], max_length)
        if enc is None:
            skipped += 1
            continue
        dropped += enc.exchanges_dropped
        examples.append({"input_ids": enc.input_ids, "labels": enc.labels})
    trained = sum(sum(l != IGNORE for l in ex["labels"]) for ex in examples)
    return examples, {"conversations": len(frame), "examples": len(examples), "skipped_too_long": skipped,
                      "exchanges_dropped": dropped, "assistant_tokens": trained}


class PadCollator:
    """Right-pads a batch; padded positions are masked out of attention and loss."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id)
        labels = torch.full((len(features), width), IGNORE)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            labels[row, :n] = torch.tensor(f["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def wrap_lora(model, tokenizer, spec: FinetuneModel):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
        target_modules=list(spec.lora_target_modules), task_type="CAUSAL_LM",
        # The role markers are new tokens: their embeddings must learn too, or the model never
        # learns to read the format or to end its turn.
        trainable_token_indices=tokenizer.convert_tokens_to_ids(ROLE_TOKENS),
    )
    return get_peft_model(model, config)


def finetune(spec: FinetuneModel, train: pd.DataFrame, validation: pd.DataFrame, out_dir: Path,
             work_dir: Path, seed: int) -> tuple[dict, list[dict]]:
    """Train, save to `out_dir`; return the metrics and the loss curve."""
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import set_seed

    # Seed before the model is built and LoRA wraps it: adapter weights are drawn at wrap time.
    set_seed(seed)
    tokenizer, model = load_base(spec, seed)
    if spec.method == "lora":
        model = wrap_lora(model, tokenizer, spec)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train_examples, train_counts = encode_split(tokenizer, train, spec.max_length)
    eval_examples, eval_counts = encode_split(tokenizer, validation, spec.max_length)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        learning_rate=spec.learning_rate,
        num_train_epochs=spec.epochs,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.01,
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=5,
        report_to="none",
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train_examples, eval_dataset=eval_examples,
        data_collator=PadCollator(tokenizer.pad_token_id),
    )
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    final_eval = trainer.evaluate()

    if spec.method == "lora":
        model.save_pretrained(out_dir / "adapter")
        model = model.merge_and_unload()
    # Generation stops at the end-of-turn marker, which the model was trained to emit.
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(END)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

    history = [h for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "method": spec.method,
        "train_loss": round(result.training_loss, 4),
        "eval_loss": round(final_eval["eval_loss"], 4),
        "steps": trainer.state.global_step,
        "train_seconds": round(seconds, 1),
        "bf16": bf16,
        "trainable_parameters": trainable,
        "train": train_counts,
        "validation": eval_counts,
    }
    return metrics, [{"step": h["step"], "loss": round(h["loss"], 4)} for h in history]
