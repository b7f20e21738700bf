"""Per-sample emotion-wheel set metrics on the default taxonomy (the reward forms): precision/recall/F1, hit,
valence agreement. Floats in [0, 1], never NaN; label reading is cached, so thousands of calls per second."""

from __future__ import annotations

from affectreason.taxonomy import analyse_labels, load_wheel


def set_precision_recall(ref: set[str], pred: set[str]) -> tuple[float, float]:
    """|R∩P|/|P| and |R∩P|/|R|; an empty side gives 0 (never 0/0)."""
    if not ref or not pred:
        return 0.0, 0.0
    common = len(ref & pred)
    return common / len(pred), common / len(ref)


def f_score(precision: float, recall: float) -> float:
    """Harmonic mean; 0 when both are 0 (the reference gives NaN)."""
    total = precision + recall
    return 0.0 if total <= 0 else 2 * precision * recall / total


def wheel_sets(
    labels: str | list[str] | None, level: int = 1, wheel: str = "default", semantic: bool = True
) -> tuple[set[str], list[str], list[str]]:
    """Clusters of a label list at `level`, plus the unmapped and the negated labels. An unmapped label stays in
    the set as `?<label>`: it lowers precision and only matches the same unknown word."""
    w = load_wheel(wheel)
    clusters: set[str] = set()
    unmapped: list[str] = []
    negated: list[str] = []
    for match in analyse_labels(labels, wheel, semantic):
        if match.word is not None:
            clusters.add(w.cluster(match.word, level))
        elif match.negated:
            negated.append(match.key)
        elif match.key:
            clusters.add("?" + match.key)
            unmapped.append(match.key)
    return clusters, unmapped, negated


def ew_precision_recall(
    pred: str | list[str] | None,
    ref: str | list[str] | None,
    level: int = 1,
    wheel: str = "default",
    semantic: bool = True,
) -> tuple[float, float]:
    """Emotion-wheel precision and recall of one prediction against one reference at `level`."""
    ref_set = wheel_sets(ref, level, wheel, semantic)[0]
    pred_set = wheel_sets(pred, level, wheel, semantic)[0]
    return set_precision_recall(ref_set, pred_set)


def ew_f1(
    pred: str | list[str] | None,
    ref: str | list[str] | None,
    level: int = 1,
    wheel: str = "default",
    semantic: bool = True,
) -> float:
    """Emotion-wheel F1 of one prediction (0 when either side is empty)."""
    return f_score(*ew_precision_recall(pred, ref, level, wheel, semantic))


def hit(
    pred: str | list[str] | None, ref: str | list[str] | None, wheel: str = "default", semantic: bool = True
) -> float:
    """1.0 if any family of the reference is among the predicted families (neutral included), else 0.0."""
    ref_set = {c for c in wheel_sets(ref, 1, wheel, semantic)[0] if not c.startswith("?")}
    pred_set = wheel_sets(pred, 1, wheel, semantic)[0]
    return 1.0 if ref_set & pred_set else 0.0


def _valence(value: float | str | list[str] | None, wheel: str, semantic: bool) -> float | None:
    if isinstance(value, (int, float)):
        return max(-1.0, min(1.0, float(value)))
    w = load_wheel(wheel)
    words = [m.word for m in analyse_labels(value, wheel, semantic) if m.word is not None]
    return sum(w.family(x).valence for x in words) / len(words) if words else None


def valence_agreement(
    pred: float | str | list[str] | None,
    ref: float | str | list[str] | None,
    wheel: str = "default",
    semantic: bool = True,
) -> float:
    """1 - |v_pred - v_ref| / 2, where v is a valence in [-1, 1] or the mean family valence of a label list;
    0.0 when either side has no valence."""
    v_pred, v_ref = _valence(pred, wheel, semantic), _valence(ref, wheel, semantic)
    if v_pred is None or v_ref is None:
        return 0.0
    return 1.0 - abs(v_pred - v_ref) / 2.0
