"""In-process vLLM, for a GPU machine without a separate server. Imported only when generate.backend is
vllm, so nothing else needs vllm installed. Requests go to vLLM in chunks of `batch_size` (vLLM batches
continuously inside a chunk), so every finished chunk reaches the cache before the next one starts.
"""

from __future__ import annotations

from hiwar.errors import HiwarError
from hiwar.generation.base import Backend, OnResult, Request, Result


def structured(schema: str | None) -> dict:
    """vLLM's own constrained decoding of a request's JSON schema: `structured_outputs` from vLLM 0.11,
    `guided_decoding` before (written for both; no GPU here to run either)."""
    if not schema:
        return {}
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class VllmBackend(Backend):
    def __init__(self, params):
        super().__init__(params)
        try:
            from vllm import LLM
        except ImportError:
            raise HiwarError("params.yaml: generate.backend: vllm is not installed here (install vllm on a GPU "
                             "machine, or serve the model with `vllm serve` and use backend http)") from None
        self.llm = LLM(model=params.model, revision=params.revision, trust_remote_code=params.trust_remote_code,
                       seed=params.seed)

    def groups(self, requests: list[Request]) -> list[list[int]]:
        size = self.params.batch_size
        return [list(range(start, min(start + size, len(requests)))) for start in range(0, len(requests), size)]

    def generate(self, requests: list[Request], on_result: OnResult) -> None:
        from vllm import SamplingParams

        p, size = self.decoding, self.params.batch_size
        for start in range(0, len(requests), size):
            chunk = requests[start:start + size]
            sampling = [SamplingParams(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_new_tokens,
                                       stop=list(p.stop) or None, seed=r.seed, **structured(r.schema)) for r in chunk]
            if chunk[0].chat:
                outputs = self.llm.chat([[{"role": "user", "content": r.prompt}] for r in chunk], sampling,
                                        use_tqdm=False)
            else:
                outputs = self.llm.generate([r.prompt for r in chunk], sampling, use_tqdm=False)
            for offset, out in enumerate(outputs):
                best = out.outputs[0]
                on_result(start + offset, Result(
                    text=best.text, finish_reason="length" if best.finish_reason == "length" else "stop",
                    tokens_in=len(out.prompt_token_ids or ()), tokens_out=len(best.token_ids)))
