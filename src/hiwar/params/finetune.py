"""The `finetune` section: the base models, full or LoRA, and the launcher."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hiwar.params.base import Section

class FinetuneModel(Section):
    path: str
    method: Literal["full", "lora"]
    learning_rate: float = Field(gt=0)
    epochs: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    grad_accum: int = Field(ge=1)
    max_length: int = Field(ge=16)
    lora_r: int = Field(ge=1)
    lora_alpha: float = Field(gt=0)
    lora_dropout: float = Field(ge=0, lt=1)
    lora_target_modules: list[str] = Field(min_length=1)
    merge: bool  # LoRA: also save the adapter merged into the base weights
    packing: bool  # several conversations per row, without attention between them
    save_steps: int = Field(ge=1)  # checkpoint interval; an interrupted run resumes from the last one
    logging_steps: int = Field(default=5, ge=1)  # loss logged (DVCLive) every this many optimizer steps
    trust_remote_code: bool
    # The conversation format trained: `own` keeps an instruct model's chat template (ChatML, Llama's, Jais's),
    # `hiwar` adds hiwar's role markers; `auto` is own when the tokenizer has a template, else hiwar.
    chat_format: Literal["auto", "own", "hiwar"] = "auto"


class FinetuneParams(Section):
    seed: int
    # What runs stages/finetune.py: `python`, or a multi-process launcher such as
    # `accelerate launch --config_file configs/accelerate/ddp.yaml` or `torchrun --nproc_per_node 4`.
    launcher: str
    models: dict[str, FinetuneModel] = Field(min_length=1)
    # The stage stops before training when truncation to max_length drops more than this share of a model's
    # training exchanges or assistant tokens (see training/data.py: truncation_report).
    max_dropped_share: float = Field(default=0.10, ge=0, le=1)

    @field_validator("launcher")
    @classmethod
    def _known_launcher(cls, value):
        if not (value == "python" or value.startswith(("accelerate launch", "torchrun", "python -m torch.distributed"))):
            raise ValueError("expected `python`, `accelerate launch ...` or `torchrun ...`")
        return value


SECTION = FinetuneParams
