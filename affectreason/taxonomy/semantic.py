"""Semantic fallback: place an unknown word in the family whose exemplars (the wheel's surface forms) it is
nearest to by sentence embedding, voting over each family's closest exemplars rather than one nearest form.

The exemplar vectors of the packaged wheel ship with the package (`data/<wheel>_vectors.npz`, float16, checked
against the form list by a key); other wheels are embedded once and cached on disk. A query embeds only the
unknown word (numpy MiniLM, no torch); `lexicon` keeps each out-of-lexicon reading in an on-disk cache
(`recall_resolved` / `remember_resolved`), so a later run embeds nothing.
`eval/oov_fallback.py` measures agreement on held-out words."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from affectreason.taxonomy.ovmer import cache_dir
from affectreason.taxonomy.wheel import _DATA_DIR, load_wheel

MODEL = "all-MiniLM-L6-v2"
# Each phrase is embedded bare and in this frame; the mean of the two is steadier for rare single words.
TEMPLATES = ("{}", "the emotion of feeling {}")
# A family's score is the mean similarity of its TOP_K exemplars nearest the query.
TOP_K = 5


def vector_key(forms: list[str]) -> str:
    """Identifies an exemplar matrix: the model, the templates and the exemplar list."""
    text = "\n".join([MODEL, *TEMPLATES, "", *forms])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def exemplar_forms(wheel_name: str) -> list[str]:
    """The wheel's surface forms used as exemplars (forms too ambiguous for free text attract noise)."""
    wheel = load_wheel(wheel_name)
    return sorted(f for f in wheel.forms if f not in wheel.free_text_stoplist)


def embed(phrases: list[str]) -> np.ndarray:
    """Unit vectors of phrases: the normalised mean over `TEMPLATES`."""
    from affectreason.metrics.embedding import get_embedder

    embedder = get_embedder()
    total = sum(embedder.encode([t.format(p) for p in phrases]) for t in TEMPLATES)
    return total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)


def packaged_vectors_path(wheel_name: str) -> Path:
    return _DATA_DIR / f"{wheel_name}_vectors.npz"


def _read_vectors(path: Path, key: str, n: int) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key or data["vectors"].shape[0] != n:
                return None
            return data["vectors"].astype(np.float32)
    except (OSError, ValueError, KeyError):
        return None


def write_vectors(path: Path, key: str, vectors: np.ndarray) -> None:
    """Write an exemplar matrix atomically (float16: 0.5 MB for the default wheel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, key=np.array(key), vectors=vectors.astype(np.float16))
    tmp.replace(path)


@lru_cache(maxsize=8)
def _exemplars(wheel_name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Exemplar forms, their unit vectors and their family index per row."""
    wheel = load_wheel(wheel_name)
    forms = exemplar_forms(wheel_name)
    key = vector_key(forms)
    cached = cache_dir() / f"wheel-{wheel.name}-{key}.npz"
    vectors = None
    if not wheel_name.endswith(".json"):
        vectors = _read_vectors(packaged_vectors_path(wheel_name), key, len(forms))
    if vectors is None:
        vectors = _read_vectors(cached, key, len(forms))
    if vectors is None:
        vectors = embed(forms)
        try:
            write_vectors(cached, key, vectors)
        except OSError:
            pass  # a read-only cache dir only costs speed
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    names = sorted(wheel.families)
    family = np.array([names.index(wheel.cluster(wheel.forms[f], 1)) for f in forms])
    return forms, vectors, family


def _resolved_path(wheel_name: str, tag: str) -> Path:
    key = vector_key([tag, *exemplar_forms(wheel_name)])
    return cache_dir() / f"resolved-{load_wheel(wheel_name).name}-{key}.json"


@lru_cache(maxsize=16)
def _resolved(wheel_name: str, tag: str) -> dict[str, list]:
    try:
        data = json.loads(_resolved_path(wheel_name, tag).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recall_resolved(wheel_name: str, tag: str, key: str) -> list | None:
    """How an earlier run read an out-of-lexicon label (`[word, how, similarity]`), so a later run needs
    neither the lemmatiser nor the embedder for it; None when not seen."""
    value = _resolved(wheel_name, tag).get(key)
    if not (isinstance(value, list) and len(value) == 3):
        return None
    if value[0] is not None and value[0] not in load_wheel(wheel_name).word_group:
        return None
    return value


def remember_resolved(wheel_name: str, tag: str, key: str, value: list) -> None:
    """Store a reading in the on-disk cache, per wheel and `tag` (the reading rules and threshold); atomic
    replace, and a read-only cache dir only costs speed."""
    resolved = _resolved(wheel_name, tag)
    resolved[key] = value
    path = _resolved_path(wheel_name, tag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(resolved, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass


def nearest_form(wheel_name: str, phrase: str) -> tuple[str | None, float, float]:
    """The exemplar form that stands for `phrase`, the winning family's score and its margin over the runner-up:
    a family's score is the mean similarity of its `TOP_K` exemplars nearest the phrase; the form is the winning
    family's nearest exemplar."""
    forms, vectors, family = _exemplars(wheel_name)
    if not forms:
        return None, 0.0, 0.0
    sims = vectors @ embed([phrase])[0]
    scores = {int(i): float(np.sort(sims[family == i])[-TOP_K:].mean()) for i in np.unique(family)}
    ranked = sorted(scores, key=scores.get, reverse=True)
    best = ranked[0]
    margin = scores[best] - scores[ranked[1]] if len(ranked) > 1 else scores[best]
    rows = np.flatnonzero(family == best)
    return forms[int(rows[np.argmax(sims[rows])])], scores[best], margin


def write_packaged_vectors(wheel_name: str = "default") -> Path:
    """Re-embed a packaged wheel's exemplars into `data/` (run after editing the wheel's forms)."""
    forms = exemplar_forms(wheel_name)
    path = packaged_vectors_path(wheel_name)
    write_vectors(path, vector_key(forms), embed(forms))
    return path


if __name__ == "__main__":
    print(write_packaged_vectors())
