"""Sentiment scores without an LLM: predicted emotions -> positive/negative/neutral through the taxonomy's
valence; binary weighted F1 and accuracy against signed valence references (references of 0 dropped)."""

from __future__ import annotations

import numpy as np

from affectreason.errors import AffectReasonError
from affectreason.metrics.ov import check_protocol
from affectreason.taxonomy import sentiment_of

_SIGN = {"positive": 1, "negative": -1}


def weighted_f1(y_true: list[int], y_pred: list[int]) -> float:
    """Support-weighted mean of per-class F1 over the classes present in either list (scikit-learn's
    `f1_score(average="weighted")` with zero-division 0)."""
    if not y_true:
        return 0.0
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    total = 0.0
    for label in np.union1d(true, pred):
        tp = float(np.sum((true == label) & (pred == label)))
        n_pred, n_true = float(np.sum(pred == label)), float(np.sum(true == label))
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        total += f1 * n_true
    return total / len(true)


def _pred_sign(value: str | list[str] | None, parity: bool, semantic: bool) -> int:
    if parity and isinstance(value, str):
        return _SIGN.get(
            value, 0
        )  # reference: exactly 'positive' / 'negative', anything else (even 'Positive') 0
    return _SIGN.get(sentiment_of(value or [], semantic=semantic), 0)


def score_sentiment(
    refs: dict[str, float],
    preds: dict[str, str | list[str] | None],
    protocol: str = "affectreason",
    wheel_dir=None,
    semantic: bool = True,
) -> dict:
    """Binary sentiment (gt > 0 vs pred > 0) weighted F1 and accuracy. `preds` hold `positive`/`negative`/
    `neutral` strings or emotion lists. Parity maps strings exactly as the reference; the default protocol reads
    them case-insensitively and maps emotion words through family valence."""
    check_protocol(protocol, wheel_dir, need_wheels=False)
    parity = protocol == "mer-unibench"
    y_true, y_pred = [], []
    for sample_id, ref in refs.items():
        try:
            value = float(ref)
        except (TypeError, ValueError):
            raise AffectReasonError(f"reference valence for {sample_id!r} is not a number: {ref!r}") from None
        if value == 0:
            continue
        y_true.append(int(value > 0))
        y_pred.append(int(_pred_sign(preds.get(sample_id), parity, semantic) > 0))
    accuracy = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if y_true else 0.0
    return {
        "weighted_f1": weighted_f1(y_true, y_pred),
        "accuracy": accuracy,
        "n": len(y_true),
        "protocol": protocol,
    }
