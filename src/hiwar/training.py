"""Fine-tuning a base model on the generated conversations, with loss on assistant tokens only.

Thin on purpose: the HF Trainer does the loop (seeding, checkpoints and resume, bf16 where supported,
several processes under `accelerate launch` or `torchrun`); hiwar supplies the chat format, the labels,
packing, a length-grouped sampler that gives the same batches for any process count, and the bookkeeping.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from hiwar.chat_format import END, IGNORE, ROLE_TOKENS, add_chat_format, encode
from hiwar.errors import HiwarError
from hiwar.packed_attention import use_packed_attention
from hiwar.params import FinetuneModel


def load_base(spec: FinetuneModel, seed: int):
    """Base tokenizer and model with hiwar's chat format added (seeded, so every stage gets the same rows)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    add_chat_format(tokenizer, model)
    return tokenizer, model


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


def pack(examples: list[dict], max_length: int) -> list[dict]:
    """Conversations packed into rows of at most `max_length` tokens (best fit, longest first).

    Position ids restart at 0 for every conversation, and attention keeps to each conversation (see
    packed_attention), so no token attends across conversations. The first label of every conversation is
    ignored already (it is a user marker), so no target is predicted from the previous conversation either.
    """
    rows: list[dict] = []
    free: list[tuple[int, int]] = []  # (space left, row index), sorted: the tightest row that fits wins
    for ex in sorted(examples, key=lambda e: -len(e["input_ids"])):
        n = len(ex["input_ids"])
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            space, index = free.pop(at)
        else:
            space, index = max_length, len(rows)
            rows.append({"input_ids": [], "labels": [], "position_ids": []})
        bisect.insort(free, (space - n, index))
        row = rows[index]
        row["input_ids"] += ex["input_ids"]
        row["labels"] += ex["labels"]
        row["position_ids"] += list(range(n))
    return rows


class PadCollator:
    """Right-pads a batch; padding is never attended to and never a target.

    Packed rows carry position ids and no attention mask: the position ids say where conversations end, and
    the padding after a row's last token counts as one more conversation, never attended to by a real one."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id)
        labels = torch.full((len(features), width), IGNORE)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        positions = torch.arange(width).repeat(len(features), 1)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            labels[row, :n] = torch.tensor(f["labels"])
            mask[row, :n] = 1
            if "position_ids" in f:
                positions[row, :n] = torch.tensor(f["position_ids"])
                positions[row, n:] = torch.arange(width - n)
        if "position_ids" in features[0]:
            return {"input_ids": ids, "labels": labels, "position_ids": positions, "use_cache": False}
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


def fingerprint(spec: FinetuneModel, seed: int, train: pd.DataFrame) -> str:
    """What a checkpoint belongs to: a checkpoint of other params or other data is never resumed."""
    data = pd.util.hash_pandas_object(train["conversation_id"], index=False).values.tobytes() \
        if "conversation_id" in train else str(len(train)).encode()
    blob = json.dumps(spec.model_dump(), sort_keys=True).encode() + str(seed).encode() + data
    return hashlib.sha256(blob).hexdigest()[:16]


def prepare_checkpoints(work_dir: Path, key: str, args) -> str | None:
    """The last checkpoint to resume from, after discarding checkpoints of a different run. Under several
    processes only the main one cleans up; the others wait for it, then read the same answer."""
    from transformers.trainer_utils import get_last_checkpoint

    with args.main_process_first(local=False, desc="checkpoints"):
        if args.process_index == 0:
            stamp = work_dir / "fingerprint"
            if work_dir.exists() and (not stamp.exists() or stamp.read_text() != key):
                shutil.rmtree(work_dir)
            work_dir.mkdir(parents=True, exist_ok=True)
            stamp.write_text(key)
        return get_last_checkpoint(str(work_dir))


class GlobalLengthGroupedSampler(torch.utils.data.Sampler):
    """Length-grouped order over the global batch (per-device batch x accumulation x processes), drawn from
    a generator seeded per epoch. Every rank draws the same order, and accelerate hands rank r the r-th
    per-device slice of each global batch, so N processes see exactly the batches one process with the same
    global batch sees: the loss curves match.

    A random `len % global_batch` examples sit out each epoch (others next epoch): a short last global batch
    would be split unevenly across ranks, which accelerate pads with repeated examples (or, with uneven
    batches allowed, leaves a rank waiting for the others forever)."""

    def __init__(self, lengths: list[int], global_batch: int, seed: int):
        self.lengths, self.global_batch, self.seed, self.epoch = lengths, global_batch, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths) // self.global_batch * self.global_batch

    def __iter__(self):
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        keep = torch.randperm(len(self.lengths), generator=generator)[:len(self)].tolist()
        order = get_length_grouped_indices([self.lengths[i] for i in keep], self.global_batch, generator=generator)
        return iter([keep[i] for i in order])


def _trainer_classes():
    """The Trainer with hiwar's sampler and an unsharded evaluation, and a callback that logs the last step.
    Built on first use so that importing this module does not import the Trainer."""
    from transformers import Trainer, TrainerCallback

    class HiwarTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            a = self.args
            return GlobalLengthGroupedSampler([len(ex["input_ids"]) for ex in dataset],
                                              a.train_batch_size * a.gradient_accumulation_steps * a.world_size,
                                              a.data_seed)

        def get_eval_dataloader(self, eval_dataset=None):
            # Every rank evaluates the whole set, one conversation per batch: a sharded eval loss depends on
            # the process count (short last batches padded with repeats), and a mean of per-conversation
            # losses does not depend on how the set is batched. The gathered copies are equal.
            dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
            return torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=self.data_collator)

    class LogLastStep(TrainerCallback):
        # Logged losses are averaged across ranks, but steps after the last log reach train_loss from each
        # rank alone: logging the last step leaves nothing over.
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_log = True

    return HiwarTrainer, LogLastStep


def dvclive_callback(live_dir: Path):
    """DVCLive logging of the curves (loss, learning rate, gradient norm), without the timings: those change
    on every run, so as tracked plots they would turn every rerun into a change. `train_seconds` in the
    metrics keeps the time."""
    from transformers.integrations import DVCLiveCallback

    from dvclive import Live

    class WithoutTimings(DVCLiveCallback):
        def on_log(self, args, state, control, model=None, logs=None, **kwargs):
            logs = {k: v for k, v in (logs or {}).items() if not k.endswith(("runtime", "_per_second"))}
            super().on_log(args, state, control, model=model, logs=logs, **kwargs)

    return WithoutTimings(live=Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None))


def finetune(spec: FinetuneModel, train: pd.DataFrame, validation: pd.DataFrame, out_dir: Path,
             work_dir: Path, seed: int, live_dir: Path | None = None, callbacks: list = ()) -> dict:
    """Train, resuming from a checkpoint in `work_dir` if one of the same run exists, and save to `out_dir`.

    Returns the metrics; DVCLive writes the loss curves under `live_dir`.
    """
    from transformers import TrainingArguments
    from transformers.trainer_utils import set_seed

    # Seed before the model is built and LoRA wraps it: adapter weights are drawn at wrap time.
    set_seed(seed)
    tokenizer, model = load_base(spec, seed)
    attention = use_packed_attention(model) if spec.packing else model.config._attn_implementation
    if spec.method == "lora":
        model = wrap_lora(model, tokenizer, spec)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train_examples, train_counts = encode_split(tokenizer, train, spec.max_length)
    eval_examples, eval_counts = encode_split(tokenizer, validation, spec.max_length)
    if spec.packing:
        train_counts["packed_rows"] = len(train_examples := pack(train_examples, spec.max_length))
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=1,
        gradient_accumulation_steps=spec.grad_accum,
        learning_rate=spec.learning_rate,
        num_train_epochs=spec.epochs,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.01,
        seed=seed,
        data_seed=seed,
        eval_strategy="epoch",
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=2,
        logging_steps=spec.logging_steps,
        report_to="none",
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every trainable parameter gets a gradient
    )
    # The process count is part of the run: a checkpoint's step means other batches under another one.
    resume = prepare_checkpoints(work_dir, f"{fingerprint(spec, seed, train)}-w{args.world_size}", args)
    if args.process_index == 0:
        print(f"finetune: {args.world_size} process(es) x batch {spec.batch_size} x accumulation {spec.grad_accum}"
              f" = effective batch {spec.batch_size * spec.grad_accum * args.world_size}", flush=True)
    HiwarTrainer, LogLastStep = _trainer_classes()
    callbacks = [LogLastStep(), *callbacks]
    if live_dir is not None:
        callbacks.append(dvclive_callback(live_dir))
    trainer = HiwarTrainer(
        model=model, args=args, train_dataset=train_examples, eval_dataset=eval_examples,
        data_collator=PadCollator(tokenizer.pad_token_id), callbacks=callbacks,
    )
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - start
    final_eval = trainer.evaluate()

    # Under FSDP each rank holds a shard: gather the full weights on every rank (a collective), then rank 0
    # saves them. (Written for GPUs; not run on these machines.)
    state_dict = trainer.accelerator.get_state_dict(trainer.model) if trainer.is_fsdp_enabled else None
    if trainer.is_world_process_zero():
        save(model, tokenizer, spec, out_dir, state_dict)
    return {
        "method": spec.method,
        "train_loss": round(result.training_loss, 4),
        "eval_loss": round(final_eval["eval_loss"], 4),
        "steps": trainer.state.global_step,
        "resumed_from_step": int(Path(resume).name.split("-")[-1]) if resume else 0,
        "train_seconds": round(seconds, 1),
        "bf16": bf16,
        "packing": spec.packing,
        "attention": attention,
        "processes": args.world_size,
        "effective_batch_size": spec.batch_size * spec.grad_accum * args.world_size,
        "trainable_parameters": trainable,
        "train": train_counts,
        "validation": eval_counts,
    }


def save(model, tokenizer, spec: FinetuneModel, out_dir: Path, state_dict: dict | None = None) -> None:
    """The tokenizer with its chat template, and the weights: a LoRA adapter (plus a merged copy when
    `merge` is set) or the full model. Generation stops at the end-of-turn marker the model learnt.
    `state_dict`: weights gathered from FSDP shards, for a full fine-tune."""
    end_id = tokenizer.convert_tokens_to_ids(END)
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
