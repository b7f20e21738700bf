"""Cue matching for EMER-style explanations: split rationales into visual / acoustic / lexical cue phrases, embed
them (cached per phrase) and score per modality both soft similarity (mean best cosine, as EmoCue-360) and
thresholded one-to-one matching (Hungarian) precision / recall / F1."""

from __future__ import annotations

import re

import numpy as np

from affectreason.metrics.sets import f_score
from affectreason.rationale import MODALITIES, Rationale, parse_rationale

# Cosine similarity at or above which two matched cue phrases count as the same cue.
MATCH_THRESHOLD = 0.5

_SENTENCE_RE = re.compile(r"[.!?;\n]+|,\s*(?:and|but|while|whereas)\s+|\s+(?:while|whereas|but)\s+")
_KEYWORDS = {
    "visual": re.compile(
        r"\b(face|facial|smil\w*|frown\w*|grin\w*|eyes?|eyebrows?|brows?|mouth|lips?|gaz\w*|glanc\w*|star\w*|"
        r"look\w*|expression\w*|gestur\w*|posture|head|nod\w*|hands?|arms?|body|lean\w*|tears?|cr(?:y|ies|ying)|"
        r"blush\w*|scene|video|appearance|wear\w*|shoulders?|clench\w*|wip\w*)\b"
    ),
    "acoustic": re.compile(
        r"\b(voice\w*|tone|tones|pitch\w*|loud\w*|volume|speech rate|speaks? (?:quickly|slowly|softly)|sigh\w*|"
        r"audio|sound\w*|intonation|shout\w*|yell\w*|whisper\w*|trembl\w*|stutter\w*|paus\w*|vocal\w*|"
        r"laugh\w*|sob\w*|scream\w*|quiet\w*|soft\w*|raised|fast|slow\w*)\b"
    ),
    "lexical": re.compile(
        r"(\"|“|\b(?:says?|said|saying|words?|subtitles?|text|content|mentions?|asks?|asked|tells?|told|"
        r"states?|statement|question\w*|repl\w*|exclaim\w*|lines?|utterance)\b)"
    ),
}


def _clauses(text: str) -> list[str]:
    return [c.strip(" ,:-") for c in _SENTENCE_RE.split(text) if len(c.split()) >= 2]


def cue_phrases(rationale: Rationale | str) -> dict[str, list[str]]:
    """Cue phrases per modality: the canonical `Visual:`/`Acoustic:`/`Lexical:` lines when present, else clauses
    of the free text assigned to every modality whose keywords they contain."""
    r = parse_rationale(rationale) if isinstance(rationale, str) else rationale
    if any(r.cues(m) for m in MODALITIES):
        return {m: list(r.cues(m)) for m in MODALITIES}
    text = r.raw or r.reasoning
    out: dict[str, list[str]] = {m: [] for m in MODALITIES}
    for clause in _clauses(text):
        lowered = clause.lower()
        for modality in MODALITIES:
            if _KEYWORDS[modality].search(lowered):
                out[modality].append(clause)
    return out


def _match(sim: np.ndarray, threshold: float) -> dict[str, dict[str, float]]:
    from scipy.optimize import linear_sum_assignment  # 0.5 s import, cue matching only

    soft_r = float(sim.max(axis=1).mean())  # rows: reference cues
    soft_p = float(sim.max(axis=0).mean())
    rows, cols = linear_sum_assignment(-sim)
    matched = int(np.sum(sim[rows, cols] >= threshold))
    hard_p, hard_r = matched / sim.shape[1], matched / sim.shape[0]
    return {
        "soft": {"precision": soft_p, "recall": soft_r, "f1": f_score(max(soft_p, 0.0), max(soft_r, 0.0))},
        "matched": {"precision": hard_p, "recall": hard_r, "f1": f_score(hard_p, hard_r)},
    }


_ZERO = {
    "soft": {"precision": 0.0, "recall": 0.0, "f1": 0.0},
    "matched": {"precision": 0.0, "recall": 0.0, "f1": 0.0},
}


def match_cues(
    ref: list[str], pred: list[str], embedder=None, threshold: float = MATCH_THRESHOLD
) -> dict | None:
    """Scores of one modality of one sample; None when the reference has no cue (the sample is skipped), zeros
    when the prediction has none."""
    if not ref:
        return None
    if not pred:
        return {k: dict(v) for k, v in _ZERO.items()}
    if embedder is None:
        from affectreason.embedding import get_embedder

        embedder = get_embedder()
    sim = np.clip(embedder.encode(ref) @ embedder.encode(pred).T, -1.0, 1.0)
    return _match(sim, threshold)


def _mean(results: list[dict]) -> dict:
    out: dict = {"n": len(results)}
    for kind in ("soft", "matched"):
        out[kind] = {
            k: float(np.mean([r[kind][k] for r in results])) if results else 0.0
            for k in ("precision", "recall", "f1")
        }
    return out


def score_cues(
    pairs: list[tuple[dict[str, list[str]], dict[str, list[str]]]],
    embedder=None,
    threshold: float = MATCH_THRESHOLD,
    categories: tuple[str, ...] = MODALITIES,
) -> dict:
    """Corpus cue scores from (reference cues, predicted cues) pairs: per category the mean over samples with
    reference cues of soft and matched precision / recall / F1 (per-sample F1 averaged, as EmoCue-360), and
    `overall` on all cues of a sample pooled."""
    if embedder is None:
        from affectreason.embedding import get_embedder

        embedder = get_embedder()
    phrases = [p for ref, pred in pairs for side in (ref, pred) for c in categories for p in side.get(c, [])]
    embedder.encode(list(dict.fromkeys(phrases)))  # one batched pass fills the cache
    per: dict[str, list[dict]] = {c: [] for c in (*categories, "overall")}
    for ref, pred in pairs:
        for category in categories:
            result = match_cues(ref.get(category, []), pred.get(category, []), embedder, threshold)
            if result is not None:
                per[category].append(result)
        pooled_ref = [p for c in categories for p in ref.get(c, [])]
        pooled_pred = [p for c in categories for p in pred.get(c, [])]
        result = match_cues(pooled_ref, pooled_pred, embedder, threshold)
        if result is not None:
            per["overall"].append(result)
    return {category: _mean(results) for category, results in per.items()}


def from_emocue(cues: dict[str, list[str]]) -> dict[str, list[str]]:
    """EmoCue-360's visual / auditory / emotional lists in our modalities: its `Subtitle text:` auditory entries
    are lexical cues, the rest of auditory is acoustic; emotional is kept as its own category."""
    auditory = cues.get("auditory", [])
    return {
        "visual": list(cues.get("visual", [])),
        "acoustic": [c for c in auditory if not c.lower().startswith("subtitle text")],
        "lexical": [c for c in auditory if c.lower().startswith("subtitle text")],
        "emotional": list(cues.get("emotional", [])),
    }


def cue_f1(
    pred: Rationale | str, ref: Rationale | str, embedder=None, threshold: float = MATCH_THRESHOLD
) -> float:
    """Per-sample reward: one-to-one matched cue F1 with matching inside each modality, counts summed over
    modalities. 0.0 when either side has no cue; never NaN."""
    ref_cues, pred_cues = cue_phrases(ref), cue_phrases(pred)
    n_ref = sum(len(v) for v in ref_cues.values())
    n_pred = sum(len(v) for v in pred_cues.values())
    if not n_ref or not n_pred:
        return 0.0
    matched = 0.0
    for modality in MODALITIES:
        result = match_cues(ref_cues[modality], pred_cues[modality], embedder, threshold)
        if result is not None and pred_cues[modality]:
            matched += result["matched"]["recall"] * len(ref_cues[modality])
    return f_score(matched / n_pred, matched / n_ref)
