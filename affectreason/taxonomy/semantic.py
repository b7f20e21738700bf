"""Semantic fallback: the lexicon form nearest to an unknown word by sentence embedding (lazy, cached).

The embeddings of the wheel's forms are cached on disk (`<cache dir>/wheel-<name>-<sha256>.npy`, keyed by the
wheel file's content and the form list), so only the first process that needs the fallback embeds them."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

import numpy as np

from affectreason.taxonomy.ovmer import cache_dir
from affectreason.taxonomy.wheel import load_wheel


@lru_cache(maxsize=8)
def _form_matrix(wheel_name: str) -> tuple[list[str], np.ndarray]:
    from affectreason.metrics.embedding import get_embedder

    wheel = load_wheel(wheel_name)
    forms = sorted(
        f for f in wheel.forms if f not in wheel.free_text_stoplist
    )  # ambiguous forms attract noise
    key = hashlib.sha256(("all-MiniLM-L6-v2\n" + "\n".join(forms)).encode()).hexdigest()[:24]
    path = cache_dir() / f"wheel-{wheel.name}-{key}.npy"
    try:
        matrix = np.load(path)
        if matrix.shape[0] == len(forms):
            return forms, matrix
    except (OSError, ValueError):
        pass
    matrix = get_embedder().encode(forms)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, matrix)
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache dir only costs speed
    return forms, matrix


def nearest_form(wheel_name: str, phrase: str) -> tuple[str | None, float]:
    """The wheel's surface form most similar to `phrase` and the cosine similarity (ties: first in sorted order)."""
    from affectreason.metrics.embedding import get_embedder

    forms, matrix = _form_matrix(wheel_name)
    if not forms:
        return None, 0.0
    sims = matrix @ get_embedder().encode([phrase])[0]
    best = int(np.argmax(sims))
    return forms[best], float(sims[best])
