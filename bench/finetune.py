"""Fine-tuning throughput: hiwar's finetune-stage trainer vs TRL's SFTTrainer, and packing vs padding at
equal tokens per optimizer step.

Every run trains the same small GPT-2 stand-in (built here, untrained, seed 0) on the same variable-length
conversations (each bundled conversation cut after a random number of its exchanges, as cleaned
generations range from 2 to 8 exchanges). The settings that decide how much work a step is are set
explicitly on every side and printed (see SETTINGS). hiwar runs through training/trainer.py's own Trainer
class (its length-grouped sampler, PadCollator, assistant-only labels); TRL gets the same chat format with
`{% generation %}` markers so `assistant_only_loss` finds the same assistant tokens, and the same
length-grouped batching. Counted per step from the batches actually trained on (after truncation): all
real tokens (padding excluded) and trained (assistant) tokens.

TRL computes per-token entropy and top-1 accuracy for its logs on every step; a third side runs TRL with
the plain Trainer loss instead, and the ratio of the two is that overhead.

Each run is one epoch over the same conversations, so every side trains on exactly the same tokens. Packing
is compared at (nearly) equal real tokens per optimizer step: packed rows hold several conversations, so
the packed batch has as many rows as come closest to the tokens of 8 padded conversations; the tokens per
step of each side are printed.

Each side runs once as a discarded warm-up, then --repeats times interleaved; median [min, max] of each
rate and of each round's ratio. Goals: hiwar / TRL >= 1; packing / padding >= 1.5 at equal tokens per step.

    python bench/finetune.py [--conversations 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from hiwar.bundled import load_bundled  # noqa: E402
from hiwar.params.models import StandIn  # noqa: E402
from hiwar.standins import build_model, text_corpus, train_tokenizer  # noqa: E402
from hiwar.training.chat_format import ASSISTANT, END, IGNORE, SYSTEM, USER, add_chat_format  # noqa: E402
from hiwar.training.data import PadCollator, encode_split, pack  # noqa: E402
from hiwar.training.packed_attention import use_packed_attention  # noqa: E402
from hiwar.training.trainer import _trainer_classes  # noqa: E402
from interleave import add_repeats, interleave, parse, summarize  # noqa: E402

BATCH, MAX_LENGTH, LR = 8, 1024, 1e-3
SETTINGS = {
    "precision": "fp32 on CPU (bf16=False, fp16=False on every side; TRL's config would turn bf16 on)",
    "activation checkpointing": "off on every side (TRL's config turns it on by default)",
    "loss": "mean NLL over assistant tokens (reply + end marker), summed over the batch / trained tokens",
    "max length": f"{MAX_LENGTH} tokens; tokens are counted after truncation, from the batches trained on",
    "batch": f"{BATCH} conversations per step, gradient accumulation 1, 1 process: effective batch {BATCH}",
    "dataloader": "0 workers, length-grouped batches (hiwar's sampler; TRL: train_sampling_strategy=group_by_length)",
    "optimizer": f"AdamW, constant learning rate {LR}, seed 0, no evaluation, no checkpoints, no logging",
}
# hiwar's template with TRL's generation markers around what the assistant must learn.
TRL_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}" + SYSTEM + "{{ m['content'] }}" + END +
    "{%- elif m['role'] == 'user' -%}" + USER + "{{ m['content'] }}" + END +
    "{%- else -%}" + ASSISTANT + "{% generation %}{{ m['content'] }}" + END + "{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}"
)


def standin(tokenizer):
    torch.manual_seed(0)
    spec = StandIn(arch="gpt2", vocab_size=2048, hidden_size=128, layers=2, heads=4, context=MAX_LENGTH, steps=1,
                   batch_size=1, learning_rate=LR)
    model = build_model(spec, tokenizer)
    add_chat_format(tokenizer, model)
    return model


def common_args(out: str, batch: int = BATCH) -> dict:
    return dict(output_dir=out, per_device_train_batch_size=batch, gradient_accumulation_steps=1, learning_rate=LR,
                num_train_epochs=1, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, logging_steps=10_000,
                save_strategy="no", eval_strategy="no", report_to="none", use_cpu=True, bf16=False, fp16=False,
                activation_checkpointing=False, seed=0, data_seed=0, dataloader_num_workers=0, disable_tqdm=True)


class Counted:
    """Trainer mixin: counts the real and the trained tokens of every batch it trains on."""

    real = trained = steps = positions = 0

    def training_step(self, model, inputs, *args, **kwargs):
        Counted.positions += inputs["input_ids"].numel()  # padding included: what the model computes on
        if "_padding" in inputs:  # packed rows: no attention mask, the collator noted the padding
            Counted.real += inputs["input_ids"].numel() - int(inputs.pop("_padding"))
        else:
            Counted.real += int(inputs["attention_mask"].sum())
        Counted.trained += int((inputs["labels"] != IGNORE).sum())
        Counted.steps += 1
        return super().training_step(model, inputs, *args, **kwargs)


class PackedCollator(PadCollator):
    """PadCollator for packed rows, noting how many padding positions it added (for the token count)."""

    def __call__(self, features):
        batch = super().__call__(features)
        batch["_padding"] = batch["input_ids"].numel() - sum(len(f["input_ids"]) for f in features)
        return batch


def timed(trainer) -> tuple[float, int, int, int, int]:
    a = trainer.args  # as the trainer will run, after each config's own defaults
    assert not (a.bf16 or a.fp16 or a.activation_checkpointing) and a.gradient_accumulation_steps == 1, a
    Counted.real = Counted.trained = Counted.steps = Counted.positions = 0
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return seconds, Counted.real, Counted.trained, Counted.steps, Counted.positions


def run_hiwar(tokenizer, examples, packed: bool = False, batch: int = BATCH) -> tuple[float, int, int, int, int]:
    HiwarTrainer, _ = _trainer_classes()

    class Trainer(Counted, HiwarTrainer):
        pass

    model = standin(tokenizer)
    if packed:
        use_packed_attention(model)
    collate = (PackedCollator if packed else PadCollator)(tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=model, args=TrainingArguments(**common_args(out, batch)), train_dataset=examples,
                          data_collator=collate)
        return timed(trainer)


def run_trl(tokenizer, frame, metrics: bool) -> tuple[float, int, int, int, int]:
    from datasets import Dataset
    from transformers import Trainer as PlainTrainer
    from trl import SFTConfig, SFTTrainer

    class Trainer(Counted, SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if metrics:  # TRL as shipped: loss plus per-token entropy and accuracy for the logs
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return PlainTrainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    tokenizer = copy.deepcopy(tokenizer)
    model = standin(tokenizer)
    tokenizer.chat_template = TRL_TEMPLATE
    dataset = Dataset.from_dict({"messages": [[dict(m) for m in ms] for ms in frame["messages"]]})
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(**common_args(out), max_length=MAX_LENGTH, assistant_only_loss=True, packing=False,
                           loss_type="nll", train_sampling_strategy="group_by_length", dataset_num_proc=None)
        trainer = Trainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        return timed(trainer)


def pipeline_packing(bundled) -> None:
    """What packing does at the pipeline's own settings: examples -> rows for each tiny-profile base model."""
    from hiwar.params import load_section

    finetune, models = load_section("finetune"), load_section("models")
    train = Path("data/split/train.parquet")
    if train.exists():
        frame, source = pd.read_parquet(train, columns=["messages"]), str(train)
    else:
        frame, source = pd.DataFrame({"messages": [c["messages"] for c in bundled.conversations]}), \
            "the bundled conversations (data/split/train.parquet not built here)"
    print(f"packing at the pipeline's settings, on {source}:")
    for name, spec in finetune.models.items():
        base = models.bases.get(name)
        if base is None:
            continue
        tokenizer = train_tokenizer(text_corpus(bundled), base.vocab_size)
        add_chat_format(tokenizer)
        examples, _ = encode_split(tokenizer, frame, spec.max_length)
        rows = pack(examples, spec.max_length)
        tokens = sum(len(e["input_ids"]) for e in examples)
        print(f"  {name}: max_length {spec.max_length}, {len(examples)} examples -> {len(rows)} packed rows "
              f"({len(examples) / len(rows):.2f} conversations per row, rows {tokens / len(rows) / spec.max_length:.0%} "
              f"full; mean example {tokens / len(examples):.0f} tokens)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=64,
                        help="conversations per run: each run is one epoch over the same ones, on every side")
    add_repeats(parser, threads=True)
    args = parse(parser)
    bundled = load_bundled()
    rng = np.random.default_rng(0)
    conversations = [c["messages"][: 2 * int(rng.integers(1, len(c["messages"]) // 2 + 1))] for c in bundled.conversations]
    conversations = conversations[: args.conversations]
    frame = pd.DataFrame({"messages": conversations})
    torch.manual_seed(0)
    tokenizer = train_tokenizer(text_corpus(bundled), 2048)
    add_chat_format(tokenizer)
    examples, counts = encode_split(tokenizer, frame, MAX_LENGTH)
    rows = pack(examples, MAX_LENGTH)
    per_conversation = np.mean([len(e["input_ids"]) for e in examples])
    per_row = np.mean([len(r["input_ids"]) for r in rows])
    packed_batch = max(1, round(BATCH * per_conversation / per_row))
    print("settings, equal on every side:")
    for key, value in SETTINGS.items():
        print(f"  {key}: {value}")
    print(f"  data: {len(frame)} conversations, {counts['skipped_too_long']} skipped as too long, "
          f"{counts['exchanges_dropped']} exchanges dropped by truncation; each run is one epoch over them; torch threads "
          f"{torch.get_num_threads()}")
    print(f"  packing: {len(examples)} conversations -> {len(rows)} rows of up to {MAX_LENGTH}; mean {per_conversation:.0f} "
          f"tokens per conversation, {per_row:.0f} per row: packed batch {packed_batch} rows ~ {BATCH} conversations")

    tokens = {}

    def side(name, run):
        def measure() -> float:
            seconds, real, trained, steps, positions = run()
            tokens.setdefault(name, []).append((real, trained, seconds, steps, positions))
            return real / seconds
        return measure

    rates = interleave({
        "hiwar padding": side("hiwar padding", lambda: run_hiwar(tokenizer, examples)),
        "TRL": side("TRL", lambda: run_trl(tokenizer, frame, metrics=True)),
        "TRL without metrics": side("TRL without metrics", lambda: run_trl(tokenizer, frame, metrics=False)),
        "hiwar packing": side("hiwar packing", lambda: run_hiwar(tokenizer, rows, True, packed_batch)),
    }, args.repeats)
    print("real tokens/s (padding excluded):")
    summarize(rates, "real tokens/s", [("hiwar padding", "TRL"), ("TRL without metrics", "TRL"),
                                       ("hiwar padding", "TRL without metrics"), ("hiwar packing", "hiwar padding")])
    print("trained (assistant) tokens/s; work per run (one epoch) and per optimizer step:")
    for name, runs in tokens.items():
        real, trained, _, steps, positions = runs[-1]
        rates = [t / s for _, t, s, _, _ in runs[1:]]  # the measured rounds, not the warm-up
        print(f"  {name}: {np.median(rates):,.0f} [{min(rates):,.0f}, {max(rates):,.0f}] trained tokens/s; "
              f"{real:,} real and {trained:,} trained tokens in {steps} steps = {real / steps:,.0f} real tokens per step; "
              f"{positions:,} positions computed with padding ({real / positions:.0%} real)")
    print("goals: hiwar / TRL >= 1; packing / padding >= 1.5 at equal tokens per step")
    pipeline_packing(bundled)


if __name__ == "__main__":
    main()
