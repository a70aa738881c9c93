"""A GGUF model on an OpenAI-compatible endpoint, served by llama.cpp (llama-cpp-python's server).

This is the most common way to run a generator or a judge off a GPU cluster: `hiwar serve` starts the server,
and params point `generate.http` or `judge.http` at it (docs/real-models.md). The tests start the same
command. The server applies the chat template stored in the GGUF file, so `template: chat` needs nothing more.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from hiwar.errors import HiwarError

INSTALL_HINT = "./run setup server (builds llama-cpp-python[server] once; docs/real-models.md)"


def server_command(gguf: str | Path, *, host: str = "127.0.0.1", port: int = 8080, context: int = 4096,
                   threads: int | None = None, alias: str | None = None) -> list[str]:
    """The command line that serves `gguf` at http://host:port/v1 under the model name `alias` (default: the
    file's name without .gguf), with `context` tokens shared by prompt and answer."""
    path = Path(gguf)
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected a GGUF model file)")
    if importlib.util.find_spec("llama_cpp") is None:
        raise HiwarError(f"llama_cpp: not installed in this environment (run {INSTALL_HINT})")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", host, "--port", str(port),
               "--n_ctx", str(context), "--model_alias", alias or path.stem]
    if threads:
        command += ["--n_threads", str(threads)]
    return command
