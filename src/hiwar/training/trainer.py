"""Fine-tuning a base model on the generated conversations, with loss on assistant tokens only.

Thin on purpose: the HF Trainer does the loop (seeding, checkpoints and resume, bf16 where supported,
several processes under `accelerate launch` or `torchrun`); hiwar supplies the chat format, the labels,
packing, a length-grouped sampler that gives the same batches for any process count, and the bookkeeping.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from hiwar.errors import HiwarError
from hiwar.io import atomic_path
from hiwar.params.finetune import FinetuneModel
from hiwar.training.chat_format import uses_hiwar_format
from hiwar.training.data import PadCollator, check_truncation, encode_split, pack
from hiwar.training.models import load_base, save, wrap_lora
from hiwar.training.packed_attention import use_packed_attention


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
    on every run, so as tracked plots they would turn every rerun into a change. The stage keeps
    `train_seconds` in logs/runs/."""
    from transformers.integrations import DVCLiveCallback

    from dvclive import Live

    class WithoutTimings(DVCLiveCallback):
        def on_log(self, args, state, control, model=None, logs=None, **kwargs):
            logs = {k: v for k, v in (logs or {}).items() if not k.endswith(("runtime", "_per_second"))}
            super().on_log(args, state, control, model=model, logs=logs, **kwargs)

    return WithoutTimings(live=Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None))


def finetune(spec: FinetuneModel, train: pd.DataFrame, validation: pd.DataFrame, out_dir: Path,
             work_dir: Path, seed: int, live_dir: Path | None = None, callbacks: list = (),
             name: str = "model", max_dropped_share: float = 1.0) -> dict:
    """Train, resuming from a checkpoint in `work_dir` if one of the same run exists, and save to `out_dir`.

    Stops with HiwarError before training (nothing written) when truncation to max_length would drop more
    than `max_dropped_share` of the training exchanges or assistant tokens.
    Returns the metrics; DVCLive writes the loss curves under `live_dir`.
    """
    from transformers import TrainingArguments
    from transformers.trainer_utils import set_seed

    # Bundled before the model is built and LoRA wraps it: adapter weights are drawn at wrap time.
    set_seed(seed)
    tokenizer, model = load_base(spec, seed)
    attention = use_packed_attention(model) if spec.packing else model.config._attn_implementation
    if spec.method == "lora":
        model = wrap_lora(model, tokenizer, spec)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train_examples, train_counts = encode_split(tokenizer, train, spec.max_length)
    config = model.config
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 10**9
    check_truncation(name, tokenizer, train, train_counts, spec.max_length, max_dropped_share, context)
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
    if len(train_examples) < spec.batch_size * args.world_size:  # the sampler would yield nothing to train on
        raise HiwarError(f"finetune.models.{name}: {len(train_examples)} training row(s)"
                         f"{' after packing' if spec.packing else ''} make no batch of {spec.batch_size} x "
                         f"{args.world_size} process(es): lower batch_size, turn packing off, or keep more data")
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
        "chat_format": "hiwar" if uses_hiwar_format(tokenizer) else "own",
        "max_length": spec.max_length,
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



def finetune_into(out: str | Path, spec: FinetuneModel, train: pd.DataFrame, validation: pd.DataFrame,
                  work_dir: Path, seed: int, live_dir: Path, **options) -> dict | None:
    """`finetune` as a stage runs it, once in every process `accelerate launch` starts: the main process
    (rank 0) writes `out` whole or not at all and returns the metrics; the others train into a scratch folder
    and return None."""
    if int(os.environ.get("RANK", "0")) != 0:
        with tempfile.TemporaryDirectory() as scratch:
            finetune(spec, train, validation, Path(scratch), work_dir, seed, **options)
        return None
    with atomic_path(out) as tmp:
        return finetune(spec, train, validation, tmp, work_dir, seed, live_dir=live_dir, **options)
