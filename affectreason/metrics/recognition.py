"""Closed-set recognition scores (MME-Emotion, EmoBench-M): a predicted answer is mapped onto the sample's label
set (exact text first, then the lexicon's emotion word), then scored as accuracy and weighted F1 (one label) or
set match and F1 (several labels). Also the reference's own extraction: the first label named in the raw text."""

from __future__ import annotations

import re
from collections.abc import Iterable

from affectreason.metrics.sentiment import weighted_f1

# Placeholder class of a prediction that names no option: it never equals a reference, so it counts as wrong.
NO_ANSWER = ""


def clean(text: str) -> str:
    """Case, punctuation and spacing folded: `' Very-strong  Negative.'` -> `very strong negative`."""
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def split_gold(label: str | list[str]) -> list[str]:
    """A released label as a list: `"anger,disgust"` -> `["anger", "disgust"]`."""
    items = label if isinstance(label, list) else str(label).split(",")
    return [s.strip() for s in items if str(s).strip()]


class LabelSet:
    """The options of one question. `match` maps free text onto an option: its cleaned text, or, for one-word
    options only, the lexicon's emotion word (`angry` -> `anger`) when no other option shares that word."""

    def __init__(self, options: Iterable[str]):
        from affectreason.taxonomy import match_label

        self.options = list(dict.fromkeys(str(o).strip() for o in options if str(o).strip()))
        self._exact = {clean(o): o for o in self.options}
        words: dict[str, list[str]] = {}
        for option in self.options:
            if len(clean(option).split()) == 1:
                word = match_label(option, semantic=False).word
                if word is not None:
                    words.setdefault(word, []).append(option)
        self._words = {w: opts[0] for w, opts in words.items() if len(opts) == 1}

    def match(self, text: str) -> str | None:
        from affectreason.taxonomy import match_label

        key = clean(text)
        if not key:
            return None
        if key in self._exact:
            return self._exact[key]
        if len(key.split()) > 3:  # a sentence, not a label
            return None
        return self._words.get(match_label(key, semantic=False).word or "")

    def choices(self, answers: list[str]) -> list[str]:
        """The distinct options named by a list of answers, in order."""
        found = (self.match(a) for a in answers)
        return list(dict.fromkeys(c for c in found if c is not None))

    def first_in_text(self, text: str) -> str | None:
        """The reference extraction: the leftmost option found as a whole word in the lowercased text
        (longer options first at the same position, so `weak negative` beats `negative`)."""
        ordered = sorted(self.options, key=len, reverse=True)
        pattern = r"\b(" + "|".join(re.escape(o.lower()) for o in ordered) + r")\b"
        hit = re.search(pattern, str(text).lower())
        return None if hit is None else next(o for o in self.options if o.lower() == hit.group(1))


def first_named(text: str, options: tuple[str, ...]) -> str | None:
    """The reference's joint-task extraction: the first option, in list order, contained in the lowercased text."""
    lowered = text.lower()
    return next((o for o in options if o.lower() in lowered), None)


def _options(ref: dict) -> LabelSet:
    return LabelSet(ref.get("label_set") or split_gold(ref["label"]))


def score_choice(refs: dict[str, dict], preds: dict[str, dict]) -> dict:
    """One answer per sample. `refs`: id -> {"label", "label_set"}; `preds`: id -> {"emotions": answers,
    "text": raw output}. `recognition` (= accuracy) and `weighted_f1` score every sample, an answer outside the
    options counting as wrong; `first_match` is the reference protocol: the first option named anywhere in the
    raw text, samples naming none (or whose label is not an option) left out and counted in `invalid`."""
    y_true, y_pred, ref_true, ref_pred = [], [], [], []
    unmatched = 0
    for sample_id, ref in refs.items():
        options = _options(ref)
        gold = options.match(ref["label"]) or ref["label"]
        pred = preds.get(sample_id) or {}
        chosen = options.choices(list(pred.get("emotions") or []))
        if not chosen:
            unmatched += 1
        y_true.append(gold)
        y_pred.append(chosen[0] if chosen else NO_ANSWER)
        first = options.first_in_text(pred.get("text") or "")
        if first is not None and gold in options.options:  # the reference also drops labels outside the set
            ref_true.append(gold)
            ref_pred.append(first)
    n = len(y_true)
    return {
        "recognition": _accuracy(y_true, y_pred),
        "accuracy": _accuracy(y_true, y_pred),
        "weighted_f1": weighted_f1(y_true, y_pred) if n else 0.0,
        "unmatched": unmatched,
        "first_match": {
            "accuracy": _accuracy(ref_true, ref_pred),
            "weighted_f1": weighted_f1(ref_true, ref_pred) if ref_true else 0.0,
            "n": len(ref_true),
            "invalid": n - len(ref_true),
        },
        "n": n,
    }


def _accuracy(y_true: list[str], y_pred: list[str]) -> float:
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true) if y_true else 0.0


def set_scores(gold: list[str], pred: list[str]) -> dict[str, float]:
    """One sample's multi-label scores: exact set match, precision, recall and F1 (0 when either set is empty)."""
    g, p = set(gold), set(pred)
    hits = len(g & p)
    precision = hits / len(p) if p else 0.0
    recall = hits / len(g) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"set_match": float(g == p and bool(g)), "precision": precision, "recall": recall, "f1": f1}


def score_multilabel(refs: dict[str, dict], preds: dict[str, dict]) -> dict:
    """Several answers per sample (ML-ER: `label` "anger,disgust"). `recognition` is the exact set match rate;
    precision, recall and F1 are per-sample values averaged over samples."""
    per = []
    unmatched = 0
    for sample_id, ref in refs.items():
        options = _options(ref)
        gold = [options.match(g) or g for g in split_gold(ref["label"])]
        chosen = options.choices(list((preds.get(sample_id) or {}).get("emotions") or []))
        unmatched += not chosen
        per.append(set_scores(gold, chosen))
    n = len(per)
    mean = {k: (sum(s[k] for s in per) / n if n else 0.0) for k in ("set_match", "precision", "recall", "f1")}
    return {"recognition": mean["set_match"], **mean, "unmatched": unmatched, "n": n}


def _pair_scores(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    return {
        "accuracy": _accuracy(y_true, y_pred),
        "weighted_f1": weighted_f1(y_true, y_pred) if y_true else 0.0,
    }


def score_joint(refs: dict[str, dict], preds: dict[str, dict]) -> dict:
    """Emotion and intent per sample (EmoBench-M's MC-EIU). `refs`: id -> {"label", "label_set", "intent",
    "intent_set"}. The predicted emotion is the first answer naming an emotion option, the intent the first other
    answer naming an intent option. Accuracy and weighted F1 for emotion, intent and the (emotion, intent) pair;
    `first_match` applies the reference's extraction (first option in list order contained in the raw text,
    samples missing either left out)."""
    ours: dict[str, tuple[list[str], list[str]]] = {k: ([], []) for k in ("emotion", "intent", "joint")}
    ref_side: dict[str, tuple[list[str], list[str]]] = {k: ([], []) for k in ("emotion", "intent", "joint")}
    for sample_id, ref in refs.items():
        emotions, intents = LabelSet(ref["label_set"]), LabelSet(ref["intent_set"])
        gold = (emotions.match(ref["label"]) or ref["label"], intents.match(ref["intent"]) or ref["intent"])
        pred = preds.get(sample_id) or {}
        answers = list(pred.get("emotions") or [])
        at = next((i for i, a in enumerate(answers) if emotions.match(a)), None)
        emotion = NO_ANSWER if at is None else emotions.match(answers[at]) or NO_ANSWER
        intent = next((intents.match(a) for i, a in enumerate(answers) if i != at and intents.match(a)), None)
        guess = (emotion, intent or NO_ANSWER)
        for key, t, p in (("emotion", gold[0], guess[0]), ("intent", gold[1], guess[1])):
            ours[key][0].append(t)
            ours[key][1].append(p)
        ours["joint"][0].append(f"{gold[0]}_{gold[1]}")
        ours["joint"][1].append(f"{guess[0]}_{guess[1]}")
        text = pred.get("text") or ""
        first = (first_named(text, tuple(ref["label_set"])), first_named(text, tuple(ref["intent_set"])))
        if None not in first:
            for key, t, p in (("emotion", gold[0], first[0]), ("intent", gold[1], first[1])):
                ref_side[key][0].append(t.lower())
                ref_side[key][1].append(str(p).lower())
            ref_side["joint"][0].append(f"{gold[0]}_{gold[1]}".lower())
            ref_side["joint"][1].append(f"{first[0]}_{first[1]}".lower())
    n = len(refs)
    result = {key: _pair_scores(*ours[key]) for key in ours}
    valid = len(ref_side["joint"][0])
    return {
        "recognition": result["joint"]["accuracy"],
        **result,
        "first_match": {
            **{key: _pair_scores(*ref_side[key]) for key in ref_side},
            "n": valid,
            "invalid": n - valid,
        },
        "n": n,
    }
