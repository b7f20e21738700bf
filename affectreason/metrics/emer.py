"""EMER-style scoring of free-form explanations: EW metrics on labels extracted from the texts plus cue
matching per modality."""

from __future__ import annotations

from pathlib import Path

from affectreason.metrics.cues import MATCH_THRESHOLD, cue_phrases, score_cues
from affectreason.metrics.ov import score_ov
from affectreason.taxonomy import extract_labels


def score_emer(
    refs: dict[str, dict],
    preds: dict[str, dict],
    protocol: str = "affectreason",
    wheel_dir: str | Path | None = None,
    embedder=None,
    threshold: float = MATCH_THRESHOLD,
    semantic: bool = True,
) -> dict:
    """`refs`/`preds`: id -> {"text": explanation, "emotions": optional label list, "cues": optional cue
    phrases per modality}. Labels come from `emotions` when given, else from the text (`extract_labels`); cues
    from `cues` when given, else from the text (`cue_phrases`); missing predictions count as empty."""

    def labels(record: dict | None) -> list[str]:
        record = record or {}
        if record.get("emotions") is not None:
            return record["emotions"]
        return extract_labels(record.get("text") or "")

    result = score_ov(
        {i: labels(r) for i, r in refs.items()},
        {i: labels(preds.get(i)) for i in refs},
        protocol=protocol,
        wheel_dir=wheel_dir,
        semantic=semantic,
    )

    def cues(record: dict | None) -> dict[str, list[str]]:
        record = record or {}
        return record.get("cues") or cue_phrases(record.get("text") or "")

    pairs = [(cues(r), cues(preds.get(i))) for i, r in refs.items()]
    result["cues"] = score_cues(pairs, embedder=embedder, threshold=threshold)
    return result
