"""Local generation with `transformers`: batched, left-padded, sampling with a seed per batch."""

from __future__ import annotations

import torch
from tqdm import tqdm

from hiwar.generation.base import Backend, Request, Result
from hiwar.io import require_path


class TransformersBackend(Backend):
    def __init__(self, params):
        super().__init__(params)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = params.model
        if source.startswith((".", "/", "models/")):
            require_path(source, "generate.model", "a model directory saved with save_pretrained")
        self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=params.trust_remote_code)
        # Left padding: a decoder-only model continues from the last position of every row.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=params.trust_remote_code)
        self.model.eval()

    @torch.inference_mode()
    def generate(self, requests: list[Request]) -> list[Result]:
        p = self.params
        results: list[Result] = []
        bar = tqdm(total=len(requests), desc="generate", unit="conv", dynamic_ncols=True)
        for start in range(0, len(requests), p.batch_size):
            batch = requests[start:start + p.batch_size]
            # One seed per batch, derived from its requests: the same grid and batch size give the same text.
            torch.manual_seed(sum(r.seed for r in batch) % (2**63))
            enc = self.tokenizer([r.prompt for r in batch], return_tensors="pt", padding=True)
            out = self.model.generate(
                **enc,
                do_sample=p.temperature > 0,
                temperature=p.temperature if p.temperature > 0 else None,
                top_p=p.top_p if p.temperature > 0 else None,
                max_new_tokens=p.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
            new_tokens = out[:, enc["input_ids"].shape[1]:]
            for i, row in enumerate(new_tokens):
                ended = (row == self.tokenizer.eos_token_id).nonzero()
                length = int(ended[0]) if len(ended) else len(row)
                text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
                results.append(Result(
                    text=text,
                    finish_reason="stop" if len(ended) else "length",
                    tokens_in=int(enc["attention_mask"][i].sum()),
                    tokens_out=length + bool(len(ended)),
                ))
            bar.update(len(batch))
        bar.close()
        return results
