"""Sentiment scores without an LLM: predicted emotions -> positive/negative/neutral through the taxonomy's
valence; binary weighted F1 and accuracy against signed valence references (references of 0 dropped)."""

from __future__ import annotations

import numpy as np

from affectreason.errors import AffectReasonError
from affectreason.metrics.ov import check_protocol
from affectreason.taxonomy import normalise_labels, sentiment_of
from affectreason.taxonomy.lexicon import read_many

_SIGN = {"positive": 1, "negative": -1}
_WRONG = -1  # the class of a failed prediction in the default protocol: matches no reference class


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


def _pred_sign(value: str | list[str] | None, parity: bool, semantic: bool) -> int | None:
    """+1 / -1 / 0 (neutral) for a prediction, None when it carries no readable sentiment (empty, unparsed or
    no label maps onto the wheel)."""
    if parity and isinstance(value, str):
        # reference: exactly 'positive' / 'negative', anything else (even 'Positive') 0
        return _SIGN.get(value, 0) if value.strip() else None
    if isinstance(value, str) and value.strip().lower() in {"positive", "negative", "neutral"}:
        return _SIGN.get(value.strip().lower(), 0)
    if not normalise_labels(value or [], semantic=semantic):
        return None
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
    them case-insensitively and maps emotion words through family valence.

    A failed prediction (empty, unparsed, nothing that maps) is wrong for every class in the default protocol;
    the parity protocol counts it as negative, as the reference does. `failed` counts them and
    `failed_counted_as` says which reading was used."""
    check_protocol(protocol, wheel_dir, need_wheels=False)
    parity = protocol == "mer-unibench"
    read_many([p for p in preds.values() if not isinstance(p, str)], semantic=semantic)
    y_true, y_pred = [], []
    failed = 0
    for sample_id, ref in refs.items():
        try:
            value = float(ref)
        except (TypeError, ValueError):
            raise AffectReasonError(f"reference valence for {sample_id!r} is not a number: {ref!r}") from None
        if value == 0:
            continue
        sign = _pred_sign(preds.get(sample_id), parity, semantic)
        failed += sign is None
        y_true.append(int(value > 0))
        if sign is None and not parity:
            y_pred.append(_WRONG)
        else:
            y_pred.append(int((sign or 0) > 0))
    accuracy = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if y_true else 0.0
    return {
        "weighted_f1": weighted_f1(y_true, y_pred),
        "accuracy": accuracy,
        "n": len(y_true),
        "failed": failed,
        "failed_counted_as": "negative" if parity else "wrong",
        "protocol": protocol,
    }
