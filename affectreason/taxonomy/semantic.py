"""Semantic fallback: the lexicon form nearest to an unknown word by sentence embedding (lazy, cached)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from affectreason.taxonomy.wheel import load_wheel


@lru_cache(maxsize=8)
def _form_matrix(wheel_name: str) -> tuple[list[str], np.ndarray]:
    from affectreason.metrics.embedding import get_embedder

    wheel = load_wheel(wheel_name)
    forms = sorted(
        f for f in wheel.forms if f not in wheel.free_text_stoplist
    )  # ambiguous forms attract noise
    return forms, get_embedder().encode(forms)


def nearest_form(wheel_name: str, phrase: str) -> tuple[str | None, float]:
    """The wheel's surface form most similar to `phrase` and the cosine similarity (ties: first in sorted order)."""
    from affectreason.metrics.embedding import get_embedder

    forms, matrix = _form_matrix(wheel_name)
    if not forms:
        return None, 0.0
    sims = matrix @ get_embedder().encode([phrase])[0]
    best = int(np.argmax(sims))
    return forms[best], float(sims[best])
