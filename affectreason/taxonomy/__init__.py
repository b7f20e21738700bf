"""Emotion taxonomy: the default levelled wheel, label normalisation, families, valence/arousal, label extraction.

Public API (light: no torch; a numpy sentence embedder only for the semantic fallback of unknown words):
`normalise_labels`, `family_of`, `families`, `sentiment_of`, `valence_of`, `arousal_of`, `extract_labels`.
The published OV-MER wheel files (parity protocol) are read by `affectreason.taxonomy.ovmer`.
"""

from __future__ import annotations

from affectreason.taxonomy.extract import extract_labels, extract_labels_llm
from affectreason.taxonomy.lexicon import LabelMatch, analyse_labels, clean_label, match_label, split_labels
from affectreason.taxonomy.wheel import Family, Wheel, load_wheel

# Mean family valence beyond which a label list counts as positive / negative.
SENTIMENT_MARGIN = 0.1

__all__ = [
    "Family",
    "LabelMatch",
    "Wheel",
    "analyse_labels",
    "arousal_of",
    "clean_label",
    "extract_labels",
    "extract_labels_llm",
    "families",
    "family_of",
    "load_wheel",
    "match_label",
    "normalise_labels",
    "sentiment_of",
    "split_labels",
    "valence_of",
]


def normalise_labels(labels: str | list[str], wheel: str = "default", semantic: bool = True) -> list[str]:
    """The wheel's emotion words for a label list, in order, without duplicates; negated and unmapped labels are
    dropped (use `analyse_labels` to see them)."""
    out: list[str] = []
    for match in analyse_labels(labels, wheel, semantic):
        if match.word is not None and match.word not in out:
            out.append(match.word)
    return out


def family_of(label: str, wheel: str = "default", level: int = 1, semantic: bool = True) -> str | None:
    """The level-`level` cluster of one label (1 family, 2 group, 3 emotion word); None if negated or unmapped."""
    word = match_label(label, wheel, semantic).word
    return None if word is None else load_wheel(wheel).cluster(word, level)


def families(labels: str | list[str], wheel: str = "default", semantic: bool = True) -> list[str]:
    """Distinct families of a label list, in order of first mention."""
    w = load_wheel(wheel)
    return list(dict.fromkeys(w.cluster(word, 1) for word in normalise_labels(labels, wheel, semantic)))


def valence_of(label: str, wheel: str = "default", semantic: bool = True) -> float | None:
    """The valence of the label's family in [-1, 1]; None if the label does not map."""
    word = match_label(label, wheel, semantic).word
    return None if word is None else load_wheel(wheel).family(word).valence


def arousal_of(label: str, wheel: str = "default", semantic: bool = True) -> float | None:
    """The arousal of the label's family in [0, 1]; None if the label does not map."""
    word = match_label(label, wheel, semantic).word
    return None if word is None else load_wheel(wheel).family(word).arousal


def sentiment_of(labels: str | list[str], wheel: str = "default", semantic: bool = True) -> str:
    """`positive`, `negative` or `neutral` from the mean family valence of the mapped labels (none: neutral).
    The words `positive`/`negative`/`neutral` themselves are read as the sentiment."""
    items = [clean_label(x) for x in split_labels(labels)]
    if len(items) == 1 and items[0] in {"positive", "negative", "neutral"}:
        return items[0]
    w = load_wheel(wheel)
    valences = [w.family(word).valence for word in normalise_labels(labels, wheel, semantic)]
    mean = sum(valences) / len(valences) if valences else 0.0
    if mean > SENTIMENT_MARGIN:
        return "positive"
    if mean < -SENTIMENT_MARGIN:
        return "negative"
    return "neutral"
