"""Shared fixtures. Tests never reach a model hub: the offline flags are set before anything imports
transformers, and every model here is built from the bundled conversations in the test session."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# This checkout's code, whatever the environment's editable install points at (another worktree, a stale copy),
# here and in every process a test starts.
import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))


def _pin_kernels() -> None:
    """The stages' kernel pins (hiwar.reproducible) for this process and every stage a test starts, as
    `./run stage` sets them; numpy's OpenBLAS reads its own before any test runs."""
    from hiwar.reproducible import environment, settings

    for name, value in environment(settings(ROOT / "params.yaml")).items():
        os.environ.setdefault(name, value)


_pin_kernels()


def stage_command(name: str, key: str = "", python: str | None = None) -> list[str]:
    """The command dvc.yaml runs for stage `name` (`key`: a foreach entry), as an argument list for a test to
    run in a scratch folder: this interpreter and this checkout's script, with dvc.yaml's paths filled in."""
    import re
    import shlex
    import sys

    import yaml

    config = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    paths = next(v["paths"] for v in config["vars"] if "paths" in v)
    stage = config["stages"][name]
    cmd = stage.get("do", stage)["cmd"].replace("${key}", key)
    cmd = re.sub(r"\$\{paths\.(\w+)\}", lambda m: paths[m.group(1)], cmd)
    words = shlex.split(cmd)
    script = next(i for i, w in enumerate(words) if w.startswith("stages/"))
    return [python or sys.executable, str(ROOT / words[script]), *words[script + 1:]]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def bundled():
    from hiwar.bundled import load_bundled

    return load_bundled(ROOT / "data/bundled")


def copy_project(dest: Path, profile: str) -> Path:
    """The project's tracked files on `profile` (profiles/<profile>.yaml), in a new git repository with nothing
    committed yet; without the committed lock, metrics and curves, which a scratch run makes anew."""
    import shutil
    import subprocess

    from hiwar.profiles import use

    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if name.startswith(("metrics/", "dvclive/")) or name == "dvc.lock":
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    use(profile, dest)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def params_data():
    from hiwar.params import read_params

    return read_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def standin_spec():
    """A factory of small stand-in model specs: standin_spec(arch="llama", context=256, ...)."""
    from hiwar.params.models import StandIn

    def make(**changes):
        base = dict(arch="gpt2", vocab_size=1200, hidden_size=32, layers=2, heads=2, context=128, steps=1,
                    batch_size=1, learning_rate=1e-3)
        return StandIn(**(base | changes))

    return make


@pytest.fixture(scope="session")
def finetune_spec():
    """A factory of fine-tuning specs for a base model folder: finetune_spec(base_dir, method="lora", ...)."""
    from hiwar.params.finetune import FinetuneModel

    def make(path, **changes):
        base = dict(path=str(path), method="full", learning_rate=1e-3, epochs=2, batch_size=4, grad_accum=1,
                    max_length=512, lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules=["c_attn"],
                    merge=True, packing=False, save_steps=2, trust_remote_code=False)
        return FinetuneModel(**(base | changes))

    return make


@pytest.fixture(scope="session")
def corpus_frame(bundled):
    """A factory of frames of bundled conversations in the split format (conversation_id, cell_id, topic,
    country, generator, messages): corpus_frame(start, stop) takes that slice of the conversations."""
    import pandas as pd

    def make(start=0, stop=None):
        convs = bundled.conversations[start:stop]
        return pd.DataFrame({"conversation_id": [c["id"] for c in convs],
                             "cell_id": [f"{c['topic']}:{c['country'] or 'XX'}" for c in convs],
                             "topic": [c["topic"] for c in convs], "country": [c["country"] for c in convs],
                             "generator": "bundled", "messages": [c["messages"] for c in convs]})

    return make


@pytest.fixture(scope="session")
def bpe_tokenizer(bundled):
    """A byte-level BPE tokenizer trained on the bundled texts, with hiwar's chat format."""
    from hiwar.training.chat_format import add_chat_format
    from hiwar.standins import text_corpus, train_tokenizer

    tokenizer = train_tokenizer(text_corpus(bundled), vocab_size=1200)
    add_chat_format(tokenizer)
    return tokenizer


@pytest.fixture(scope="session")
def tiny_lm(bpe_tokenizer, standin_spec):
    """A small random GPT-2 over `bpe_tokenizer` with a 128-token context (so sliding windows are exercised)."""
    import torch

    from hiwar.standins import build_model

    torch.manual_seed(0)
    model = build_model(standin_spec(), bpe_tokenizer)
    model.eval()
    return model


@pytest.fixture
def short_conversation():
    return [
        {"role": "user", "content": "ما أفضل وقت لزيارة وادي رم؟"},
        {"role": "assistant", "content": "الربيع والخريف، فالحرارة فيهما معتدلة والسماء صافية ليلًا."},
        {"role": "user", "content": "وهل أحتاج إلى مرشد؟"},
        {"role": "assistant", "content": "يُستحسن ذلك، فالمرشدون المحليون يعرفون الدروب والمخيمات."},
    ]


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory, bundled, standin_spec):
    """A small GPT-2 stand-in saved as a base model (no chat format yet), for fine-tuning tests."""
    import torch

    from hiwar.standins import build_model, text_corpus, train_tokenizer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("base")
    tokenizer = train_tokenizer(text_corpus(bundled), 600)
    build_model(standin_spec(vocab_size=600, layers=1, context=1024), tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


class Servers:
    """Starts server processes and waits until each is ready; stops them all at close(). One way to start the
    loopback model and judge, the S3 server and the llama.cpp server, so a slow or dead server fails the same way:
    with its own output in the message."""

    def __init__(self):
        self.started = []

    def start(self, args: list[str], *, url: str | None = None, probe: str = "", timeout: float = 60,
              env: dict | None = None) -> tuple[str, "subprocess.Popen"]:
        """Run `args`; its base URL is `url`, polled at url + probe until it answers, or else the address the
        process prints on a line "listening on <url>". Gives (url, process)."""
        import subprocess
        import time
        import urllib.error
        import urllib.request

        import tempfile

        # A server that logs a lot (llama.cpp) would block on a full pipe nobody reads: it logs to a file.
        output = subprocess.PIPE if url is None else tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                env={**os.environ, **(env or {})})
        self.started.append((proc, output))
        if url is None:
            line = proc.stdout.readline()
            if not line.startswith("listening on "):
                raise RuntimeError(f"{args[:3]} did not start: {line!r}{proc.stdout.read()[-2000:]}")
            return line.split()[-1], proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url + probe, timeout=2):
                    return url, proc
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        proc.kill()
        output.seek(0)
        raise RuntimeError(f"{args[:3]} not ready at {url + probe} within {timeout:g} s: {output.read()[-2000:]}")

    def close(self) -> None:
        for proc, output in self.started:
            proc.kill()
            proc.wait()
            (proc.stdout or output).close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def servers():
    """Server processes for one test (Servers)."""
    pool = Servers()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def session_servers():
    """Server processes shared by the whole session: slow to start, and stateless for the tests that use them."""
    pool = Servers()
    yield pool
    pool.close()


def loopback_args(log: Path, name: str = "loopback", **options) -> list[str]:
    """The command line of an OpenAI-compatible loopback server (hiwar.loopback) with `options`."""
    import sys

    args = [sys.executable, "-m", "hiwar.loopback", "--port", "0", "--log", str(log), "--name", name]
    for option, value in options.items():
        flag = f"--{option.replace('_', '-')}"
        args += [flag] if value is True else [flag, str(value)]
    return args


@pytest.fixture
def loopback(servers, tmp_path):
    """loopback(**options) starts a loopback server and gives (base_url, log_path, process); every server
    stops when the test ends."""
    count = iter(range(1000))

    def start(name="loopback", **options):
        log = tmp_path / f"{name}-{next(count)}.jsonl"
        url, proc = servers.start(loopback_args(log, name, **options))
        return url, log, proc

    return start


@pytest.fixture(scope="session")
def s3_server(session_servers):
    """A real S3-compatible server (moto) on loopback with one bucket; gives (endpoint_url, env) where env
    holds the dummy credentials a DVC subprocess needs. Credentials live only in that env, never in files."""
    import sys

    import boto3

    port = free_port()
    url, _ = session_servers.start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   url=f"http://127.0.0.1:{port}", probe="/moto-api/")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           # one attempt, not botocore's retries: a test of an unreachable remote fails in seconds
           "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
    boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="hiwar-test")
    return url, env


@pytest.fixture(scope="session")
def llama_server(session_servers):
    """llama.cpp's OpenAI-compatible server (llama-cpp-python, built by `./run test`) serving the GGUF of
    SmolLM2-135M-Instruct on loopback, one request at a time as it works; gives (base_url, model name)."""
    import importlib.util

    from hiwar.models_import import smollm2_gguf
    from hiwar.serving import server_command

    if importlib.util.find_spec("llama_cpp") is None:
        if os.environ.get("HIWAR_CI"):  # CI must run these: a missing install step fails rather than skips
            pytest.fail("llama-cpp-python is not installed (./run test installs it)")
        pytest.skip("llama-cpp-python is not installed (./run setup server)")
    port = free_port()
    command = server_command(smollm2_gguf(), port=port, context=8192, threads=2, alias="smollm2")
    url, _ = session_servers.start(command, url=f"http://127.0.0.1:{port}/v1", probe="/models", timeout=180)
    return url, "smollm2"
