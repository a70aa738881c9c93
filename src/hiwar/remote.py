"""Running DVC (and git) for hiwar's commands, with DVC's usual failures explained in one line each:
unreachable remote, missing credentials, outputs that were never pushed (and the stage that rebuilds them).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from hiwar.errors import HiwarError
from hiwar.paths import fill


def run(args: list[str]) -> str:
    """Run a command and return its output; a failure becomes a HiwarError (DVC's explained)."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise HiwarError(explain_dvc_error(done.stdout + done.stderr, " ".join(args)) if args[0] == "dvc"
                         else f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def remote_args(remote: str | None) -> list[str]:
    return ["-r", remote] if remote else []


def explain_dvc_error(output: str, command: str) -> str:
    """One line that names the cause and the fix, for the failures people actually hit."""
    text = " ".join(output.split())
    if re.search(r"Unable to locate credentials|NoCredentialsError|InvalidAccessKeyId|SignatureDoesNotMatch|"
                 r"no credentials|AccessDenied", text, re.IGNORECASE):
        return (f"`{command}`: the remote refused the credentials, or none were found. Put them in the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or in .dvc/config.local with "
                "`dvc remote modify --local <remote> access_key_id ...`; never in .dvc/config")
    if re.search(r"Could not connect|Connection refused|Cannot connect|ConnectTimeout|EndpointConnectionError|"
                 r"Name or service not known|unreachable|timed out", text, re.IGNORECASE):
        return (f"`{command}`: the remote cannot be reached (check its URL and endpointurl with `dvc remote list`, "
                "and that the server is up)")
    if "Checkout failed for following targets" in text or "do not exist neither locally nor on remote" in text:
        return f"`{command}`: {missing_outputs_message(output)}"
    if "no remote" in text.lower() or "remote is not set" in text.lower():
        return (f"`{command}`: no DVC remote is configured (see the README, 'Remote storage': "
                "`dvc remote add -d ...`)")
    last = [line for line in output.strip().splitlines() if line.strip()]
    return f"`{command}` failed: {last[-1] if last else 'no output'}"


def stage_of(path: str, dvc_yaml: Path = Path("dvc.yaml"), params: Path = Path("params.yaml")) -> str | None:
    """The stage whose outs contain `path` (foreach stages expanded over finetune.models)."""
    spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
    paths = next((v["paths"] for v in spec.get("vars", []) if isinstance(v, dict) and "paths" in v), {})
    models = list((yaml.safe_load(params.read_text(encoding="utf-8")) or {}).get("finetune", {}).get("models", {}))
    for name, stage in spec.get("stages", {}).items():
        if "foreach" in stage:
            for key in models:
                outs = [fill(str(o), paths).replace("${key}", key) for o in stage["do"].get("outs", [])]
                if any(path == o or path.startswith(o.rstrip("/") + "/") for o in outs):
                    return f"{name}@{key}"
            continue
        outs = [fill(next(iter(o)) if isinstance(o, dict) else o, paths) for o in stage.get("outs", [])]
        if any(path == o or path.startswith(o.rstrip("/") + "/") for o in outs):
            return name
    return None


def missing_outputs_message(output: str) -> str:
    """DVC lists the outputs it could not check out after 'Checkout failed for following targets:'."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "Checkout failed for following targets" in line), None)
    paths = []
    for line in lines[start + 1:] if start is not None else []:
        line = line.strip()
        if not line or line.startswith(("Is your cache", "<http")):
            break
        paths.append(line)
    if not paths:
        return "some outputs were never pushed to the remote (`dvc status -c` lists them; `dvc repro` rebuilds them)"
    named = []
    for path in paths[:8]:
        stage = stage_of(path)
        named.append(f"{path} (rebuild it with `dvc repro {stage}`)" if stage else path)
    more = f" and {len(paths) - 8} more" if len(paths) > 8 else ""
    return "never pushed to the remote: " + ", ".join(named) + more
