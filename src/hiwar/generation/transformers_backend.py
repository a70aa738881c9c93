"""Local generation with `transformers`: batched, left-padded, a sampling seed per request, stop strings.

`generate()` samples a whole batch from one random stream, so a request's text would depend on which batch
it landed in. Instead each row gets its own torch.Generator seeded from its request, a logits processor
draws that row's token (temperature, top-p, Gumbel-max) and hands greedy decoding a one-hot choice. The
text of a request then depends on its seed alone, which is what the cache key promises.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hiwar.errors import HiwarError
from hiwar.generation.base import Backend, OnResult, Request, Result
from hiwar.generation.constrained import SchemaConstraint
from hiwar.io import is_local_path, require_path


class SeededSampler:
    """A LogitsProcessor that samples every row from its own generator."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_p < 1:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            probs = sorted_logits.softmax(-1)
            # drop a token when the tokens ranked above it already hold top_p of the mass (the first stays)
            drop_sorted = probs.cumsum(-1) - probs > self.top_p
            logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
        noise = torch.stack([torch.rand(logits.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(noise.clamp(1e-10, 1 - 1e-10)))
        chosen = (logits + gumbel.to(logits.device)).argmax(-1)
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(-1, chosen[:, None], 0.0)


# (path, size, mtime, ctime) -> sha256 of the file: a model served many times is read once per change.
# ctime too: a copy that restores the old mtime (cp -p, rsync -t) still changes ctime, which no one can set.
_FILE_HASHES: dict[tuple[str, int, int, int], str] = {}


def file_sha256(file: Path) -> str:
    """sha256 of every byte of a file, cached by path, size and modification/change times."""
    import hashlib

    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def model_revision(source: str) -> str | None:
    """A local model's fingerprint, for the cache key: the sha256 of every file, whole, so retrained weights
    never reuse old answers whichever byte changed. Hashes are cached by path, size and mtime/ctime, so only the
    first request after a change reads the weights."""
    import hashlib

    path = Path(source)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file_sha256(file).encode())
    return digest.hexdigest()[:16]


class TransformersBackend(Backend):
    def __init__(self, params):
        super().__init__(params)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = params.model
        if is_local_path(source):
            require_path(source, "generate.model", "a model directory saved with save_pretrained")
        load = dict(trust_remote_code=params.trust_remote_code)
        if params.revision and not is_local_path(source):
            load["revision"] = params.revision
        self.tokenizer = AutoTokenizer.from_pretrained(source, **load)
        # Left padding: a decoder-only model continues from the last position of every row.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(source, **load)
        self.model.eval()
        self._revision = params.revision or model_revision(source)

    @property
    def revision(self) -> str | None:
        return self._revision

    def _prompt_text(self, request: Request) -> str:
        if not request.chat:
            return request.prompt
        if not self.tokenizer.chat_template:
            raise HiwarError(f"params.yaml: generate.template: chat needs a model with a chat template; "
                             f"{self.params.model} has none (use its own template, e.g. tiny or jais)")
        return self.tokenizer.apply_chat_template([{"role": "user", "content": request.prompt}],
                                                  add_generation_prompt=True, tokenize=False)

    def groups(self, requests: list[Request]) -> list[list[int]]:
        # Similar lengths share a batch: less padding. Each request's text does not depend on its batch.
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].prompt))
        return [order[start:start + self.params.batch_size] for start in range(0, len(order), self.params.batch_size)]

    @torch.inference_mode()
    def generate(self, requests: list[Request], on_result: OnResult) -> None:
        p = self.decoding
        for indices in self.groups(requests):
            batch = [requests[i] for i in indices]
            # A rendered chat template already holds the special tokens it needs (BOS among them).
            enc = self.tokenizer([self._prompt_text(r) for r in batch], return_tensors="pt", padding=True,
                                 add_special_tokens=not batch[0].chat)
            sampling, processors = {}, []
            if any(r.schema for r in batch):  # held to a JSON schema before the sampler draws
                processors.append(SchemaConstraint(self.tokenizer, [r.schema for r in batch], enc["input_ids"].shape[1]))
            if p.temperature > 0:
                processors.append(SeededSampler([r.seed for r in batch], p.temperature, p.top_p))
            if processors:
                sampling["logits_processor"] = processors
            if p.stop:
                sampling.update(stop_strings=list(p.stop), tokenizer=self.tokenizer)
            out = self.model.generate(
                **enc, do_sample=False, max_new_tokens=p.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id, **sampling,
            )
            new_tokens = out[:, enc["input_ids"].shape[1]:]
            for j, (i, row) in enumerate(zip(indices, new_tokens)):
                on_result(i, self._result(row, tokens_in=int(enc["attention_mask"][j].sum())))

    def _result(self, row: torch.Tensor, tokens_in: int) -> Result:
        ended = (row == self.tokenizer.eos_token_id).nonzero()
        length = int(ended[0]) if len(ended) else len(row)
        text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
        finish = "stop" if len(ended) else "length"
        for stop in self.decoding.stop:
            if stop in text:
                text, finish = text[:text.index(stop)], "stop"
        return Result(text=text, finish_reason=finish, tokens_in=tokens_in, tokens_out=length + bool(len(ended)))
