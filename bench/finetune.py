"""Fine-tuning throughput on the tiny stand-in: hiwar vs TRL's SFTTrainer, and packing vs padding.

Every run trains the same small GPT-2 stand-in (built here from the bundled conversations) on the same
variable-length conversations (each bundled conversation cut after a random number of its exchanges, as
cleaned generations range from 2 to 8 exchanges), with the same batch size, max length, learning rate,
step count and assistant-only loss, and reports real (non-padding) training tokens per second. TRL gets the
same chat format, with `{% generation %}` markers so that its `assistant_only_loss` can find the assistant
tokens. Packed rows use hiwar's per-conversation attention, as the finetune stage does.

Goals: hiwar at least as fast as TRL (ratio >= 1); packing at least 1.5x padding.

    python bench/finetune.py [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

from hiwar.training.chat_format import ASSISTANT, END, SYSTEM, USER, add_chat_format  # noqa: E402
from hiwar.training.packed_attention import use_packed_attention  # noqa: E402
from hiwar.params import StandIn  # noqa: E402
from hiwar.bundled import load_bundled  # noqa: E402
from hiwar.standins import build_model, text_corpus, train_tokenizer  # noqa: E402
from hiwar.training.data import PadCollator, encode_split, pack  # noqa: E402

BATCH, MAX_LENGTH, LR = 8, 1024, 1e-3
# hiwar's template with TRL's generation markers around what the assistant must learn.
TRL_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}" + SYSTEM + "{{ m['content'] }}" + END +
    "{%- elif m['role'] == 'user' -%}" + USER + "{{ m['content'] }}" + END +
    "{%- else -%}" + ASSISTANT + "{% generation %}{{ m['content'] }}" + END + "{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}"
)


def standin(seed_data):
    torch.manual_seed(0)
    tokenizer = train_tokenizer(text_corpus(seed_data), 2048)
    spec = StandIn(arch="gpt2", vocab_size=2048, hidden_size=128, layers=2, heads=4, context=MAX_LENGTH, steps=1,
                   batch_size=1, learning_rate=LR)
    model = build_model(spec, tokenizer)
    add_chat_format(tokenizer, model)
    return tokenizer, model


def args(out: str, steps: int, **extra) -> dict:
    return dict(output_dir=out, per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=steps,
                lr_scheduler_type="constant", logging_steps=10_000, save_strategy="no", report_to="none",
                use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True, **extra)


class TokenCount:
    """Counts the real tokens the model is trained on (padding excluded)."""

    def __init__(self, collate):
        self.collate, self.tokens = collate, 0

    def __call__(self, features):
        batch = self.collate(features)
        self.tokens += sum(len(f["input_ids"]) for f in features)
        return batch


def run_hiwar(frame, steps: int, packing: bool, sampling: str) -> float:
    tokenizer, model = standin(load_bundled())
    examples, _ = encode_split(tokenizer, frame, MAX_LENGTH)
    if packing:
        examples = pack(examples, MAX_LENGTH)
        use_packed_attention(model)
    collate = TokenCount(PadCollator(tokenizer.pad_token_id))
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=model, args=TrainingArguments(**args(out, steps, train_sampling_strategy=sampling)),
                          train_dataset=examples, data_collator=collate)
        start = time.perf_counter()
        trainer.train()
        return collate.tokens / (time.perf_counter() - start)


def run_trl(frame, steps: int) -> float:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tokenizer, model = standin(load_bundled())
    tokenizer.chat_template = TRL_TEMPLATE
    dataset = Dataset.from_dict({"messages": [[dict(m) for m in ms] for ms in frame["messages"]]})
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(**args(out, steps), max_length=MAX_LENGTH, assistant_only_loss=True, packing=False)
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        collate = TokenCount(trainer.data_collator)
        trainer.data_collator = collate
        start = time.perf_counter()
        trainer.train()
        return collate.tokens / (time.perf_counter() - start)


def main():
    import numpy as np
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    steps = parser.parse_args().steps
    rng = np.random.default_rng(0)
    conversations = [c["messages"][: 2 * int(rng.integers(1, len(c["messages"]) // 2 + 1))]
                     for c in load_bundled().conversations]
    frame = pd.DataFrame({"messages": conversations})
    results = {
        "trl_sft_padding": run_trl(frame, steps),
        "hiwar_padding_random": run_hiwar(frame, steps, packing=False, sampling="random"),
        "hiwar_padding_length_grouped": run_hiwar(frame, steps, packing=False, sampling="group_by_length"),
        "hiwar_packing": run_hiwar(frame, steps, packing=True, sampling="random"),
    }
    for name, rate in results.items():
        print(f"{name:30s} {rate:9.0f} train tokens/s")
    print(f"hiwar / TRL (both padding, random order): {results['hiwar_padding_random'] / results['trl_sft_padding']:.2f} (goal >= 1)")
    print(f"packing / padding (random order):         {results['hiwar_packing'] / results['hiwar_padding_random']:.2f} (goal >= 1.5)")
    print(f"packing / padding (length-grouped):       {results['hiwar_packing'] / results['hiwar_padding_length_grouped']:.2f}")


if __name__ == "__main__":
    main()
