"""Reward registry for RL: small pure functions `(completion, reference) -> float | None` and their trl wrappers.

Each reward reads the completion through `parse_rationale` and the reference as a dict with (some of) the keys
`emotions` (list of words), `solution` (R1-style answer text), `visual_cues` / `acoustic_cues` / `lexical_cues`,
`valence`. A reward returns None when the reference lacks what it needs (trl then leaves it out of the mean).
Rewards are named in a recipe by registry name or by dotted path (`my_pkg.rewards:fn`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.rationale import Rationale, parse_rationale

RewardFn = Callable[..., "float | None"]

REWARDS: dict[str, RewardFn] = {}

# The R1-Omni format and answer patterns, kept verbatim for parity with its published rewards.
_R1_FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.S)
_R1_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>")
_CANONICAL_THINK_KEYS = ("visual:", "acoustic:", "lexical:", "reasoning:")


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator adding a reward function to the registry under `name`."""

    def add(fn: RewardFn) -> RewardFn:
        REWARDS[name] = fn
        return fn

    return add


def get_reward(name: str) -> RewardFn:
    """A registered reward by name, or a user function by dotted path `package.module:function`."""
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise AffectReasonError(f"cannot import reward {name!r}: {exc}") from None
        if not callable(fn):
            raise AffectReasonError(f"reward {name!r} is not callable")
        return fn
    raise AffectReasonError(
        f"unknown reward {name!r}; known: {', '.join(sorted(REWARDS))} or module:function"
    )


def _rationale(completion: str | Rationale) -> Rationale:
    return completion if isinstance(completion, Rationale) else parse_rationale(completion)


def _text(completion: str | Rationale) -> str:
    return completion.raw if isinstance(completion, Rationale) else (completion or "")


def _ref_emotions(reference: dict[str, Any]) -> list[str]:
    from affectreason.taxonomy import normalise_labels

    value = reference.get("emotions")
    if value is None and reference.get("solution"):
        value = parse_rationale(str(reference["solution"])).emotions or [
            _answer_text(str(reference["solution"]))
        ]
    if isinstance(value, str):
        value = parse_rationale(f"<answer>{value}</answer>").emotions
    return normalise_labels([str(v) for v in value or []])


def _answer_text(text: str) -> str:
    match = _R1_ANSWER_RE.search(text)
    return match.group(1).strip() if match else text.strip()


@register_reward("emotion_wheel")
def emotion_wheel(completion: str | Rationale, reference: dict[str, Any], level: int = 1) -> float | None:
    """Per-sample emotion-wheel F1 (our protocol) between the answered emotions and the reference emotions."""
    from affectreason.metrics import ew_f1

    gold = _ref_emotions(reference)
    if not gold:
        return None
    return float(ew_f1(_rationale(completion).emotions, gold, level=level))


@register_reward("format")
def format_reward(
    completion: str | Rationale, reference: dict[str, Any] | None = None, strict: bool = False
) -> float:
    """1 when the whole completion is `<think>…</think><answer>…</answer>` (R1-Omni parity).

    With `strict`, only the full canonical form scores 1 (all four think lines, a parsed emotion list); an R1-shaped
    but otherwise non-canonical completion then scores 0.5.
    """
    text = _text(completion)
    if not _R1_FORMAT_RE.fullmatch(text):
        return 0.0
    if not strict:
        return 1.0
    rationale = _rationale(completion)
    think = text[: text.find("</think>")].lower()
    canonical = rationale.parse_ok and all(key in think for key in _CANONICAL_THINK_KEYS)
    return 1.0 if canonical else 0.5


@register_reward("accuracy")
def accuracy(completion: str | Rationale, reference: dict[str, Any]) -> float | None:
    """R1-Omni accuracy: the `<answer>` text (or the stripped whole text) equals the solution's, case-sensitively."""
    solution = reference.get("solution")
    if solution is None:
        emotions = reference.get("emotions")
        if not emotions:
            return None
        solution = emotions if isinstance(emotions, str) else ", ".join(emotions)
    return 1.0 if _answer_text(_text(completion)) == _answer_text(str(solution)) else 0.0


def _families(words: Iterable[str], level: int) -> set[str]:
    from affectreason.taxonomy import family_of

    found = (family_of(w, level=level) for w in words)
    return {f for f in found if f}


@register_reward("think_answer_consistency")
def think_answer_consistency(
    completion: str | Rationale, reference: dict[str, Any] | None = None, level: int = 1
) -> float:
    """Jaccard overlap of the emotion families argued in the think block and those in the answer (0 if either is empty)."""
    from affectreason.taxonomy import extract_labels

    rationale = _rationale(completion)
    think_text = " ".join(
        [rationale.reasoning, *rationale.visual_cues, *rationale.acoustic_cues, *rationale.lexical_cues]
    )
    argued = _families(extract_labels(think_text), level)
    answered = _families(rationale.emotions, level)
    if not argued or not answered:
        return 0.0
    return len(argued & answered) / len(argued | answered)


@register_reward("cue_grounding")
def cue_grounding(completion: str | Rationale, reference: dict[str, Any]) -> float | None:
    """Semantic cue F1 between the completion's per-modality cues and the reference cues (None without reference cues)."""
    from affectreason.metrics import cue_f1

    ref = Rationale(
        visual_cues=list(reference.get("visual_cues") or []),
        acoustic_cues=list(reference.get("acoustic_cues") or []),
        lexical_cues=list(reference.get("lexical_cues") or []),
    )
    if not (ref.visual_cues or ref.acoustic_cues or ref.lexical_cues):
        return None
    return float(cue_f1(_rationale(completion), ref))


@register_reward("length_penalty")
def length_penalty(
    completion: str | Rationale,
    reference: dict[str, Any] | None = None,
    extra_emotions: int = 1,
    max_think_words: int = 200,
) -> float:
    """A penalty in [-1, 0]: answer lists longer than the reference (+`extra_emotions`) and over-long reasoning.

    Each surplus emotion costs 0.25; reasoning past `max_think_words` costs its overshoot as a fraction of the limit,
    each part capped at 0.5.
    """
    rationale = _rationale(completion)
    allowed = max(len(_ref_emotions(reference or {})), 1) + extra_emotions
    surplus = max(0, len(rationale.emotions) - allowed)
    text = _text(completion)
    think = text[: text.find("</think>")] if "</think>" in text else text
    overshoot = max(0, len(think.split()) - max_think_words) / max_think_words
    return -(min(0.5, 0.25 * surplus) + min(0.5, overshoot))


_SENTIMENT_SIGN = {"positive": 1, "negative": -1, "neutral": 0}


def _valence_sign(value: float | None, emotions: list[str]) -> int | None:
    from affectreason.taxonomy import sentiment_of

    if value is not None:
        return (value > 0.05) - (value < -0.05)
    return _SENTIMENT_SIGN[sentiment_of(emotions)] if emotions else None


@register_reward("valence")
def valence(completion: str | Rationale, reference: dict[str, Any]) -> float | None:
    """1 when the completion's valence sign agrees with the reference's (stated number, else from the emotions)."""
    rationale = _rationale(completion)
    ref_value = reference.get("valence")
    ref_sign = _valence_sign(None if ref_value is None else float(ref_value), _ref_emotions(reference))
    if ref_sign is None:
        return None
    return 1.0 if _valence_sign(rationale.valence, rationale.emotions) == ref_sign else 0.0


_EVIDENCE: dict[str, Any] = {}


@register_reward("cue_faithfulness")
def cue_faithfulness(
    completion: str | Rationale, reference: dict[str, Any], semantic: bool = True
) -> float | None:
    """Supported / (supported + contradicted) cues against the clip's measurements (`affectreason.verify`).

    Reads the clip from the row's `video` (else `audio`) path; None without a clip or without a checkable cue.
    """
    from affectreason.verify import EvidenceCache, verify_rationale

    source = reference.get("video") or reference.get("audio")
    rationale = _rationale(completion)
    if not source or not (rationale.visual_cues or rationale.acoustic_cues):
        return None
    cache = _EVIDENCE.setdefault("cache", EvidenceCache())
    return verify_rationale(rationale, cache.get(str(source)), semantic).faithfulness


def reference_of(example: Any) -> dict[str, Any]:
    """The reward reference of a caption row (`affectreason.train.data.CaptionExample`): emotions, cues, valence."""
    from affectreason.train.data import target_rationale

    target = target_rationale(example)
    return {
        "emotions": list(target.emotions),
        "solution": ", ".join(target.emotions),
        "visual_cues": list(target.visual_cues),
        "acoustic_cues": list(target.acoustic_cues),
        "lexical_cues": list(target.lexical_cues),
        "valence": target.valence,
    }


def score_completion(
    completion: str,
    reference: dict[str, Any],
    weights: dict[str, float],
    options: dict[str, dict] | None = None,
) -> dict[str, float | None]:
    """Every weighted reward on one completion plus their weighted `total` (rewards that return None count 0)."""
    options = options or {}
    rationale = parse_rationale(completion)
    scores: dict[str, float | None] = {}
    total = 0.0
    for name, weight in weights.items():
        value = get_reward(name)(rationale, reference, **options.get(name, {}))
        scores[name] = value
        total += weight * (value or 0.0)
    scores["total"] = total
    return scores


def trl_reward(name: str, **options: Any) -> Callable[..., list[float | None]]:
    """Wrap a registry reward as a trl reward function: references come from the dataset columns of each row."""
    fn = get_reward(name)

    def reward(prompts: list, completions: list, **columns: Any) -> list[float | None]:
        columns.pop("completion_ids", None)
        columns.pop("trainer_state", None)
        out = []
        for i, completion in enumerate(completions):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            reference = {key: values[i] for key, values in columns.items() if isinstance(values, list)}
            out.append(fn(parse_rationale(text), reference, **options))
        return out

    reward.__name__ = name.rsplit(":", 1)[-1]
    return reward
