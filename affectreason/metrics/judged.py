"""Scores computed from an LLM judge's replies, as the benchmarks' own scripts define them: MME-Emotion's step
ratings (recognition = the last step, reasoning = the mean of the others, CoT = alpha-weighted mix) and
EmoBench-M's laughter-reasoning ratings (logic and multimodal association, 0-5 each)."""

from __future__ import annotations

import re

# MME-Emotion's weight of recognition in the CoT score (`cal_metrics.py --alpha`, default 0.5).
COT_ALPHA = 0.5

_SCORE_BLOCK = re.compile(r"<score>(.*?)</score>", re.S)
_FRACTION = re.compile(r":\s*(\d+)/(\d+)")


def parse_step_scores(reply: str | None) -> list[float] | None:
    """`<score>Step 1: 1/1, Step 2: 0/1</score>` -> `[1.0, 0.0]`; None when there is no score block or no rating
    in it (the sample is then left out, as the reference does). A `k/0` rating counts 0."""
    block = _SCORE_BLOCK.search(reply or "")
    if block is None:
        return None
    scores = [int(a) / int(b) if int(b) else 0.0 for a, b in _FRACTION.findall(block.group(1))]
    return scores or None


def step_metrics(scores: list[float]) -> dict[str, float]:
    """One sample: recognition is the last step's rating, reasoning the mean of the steps before it (0 when the
    answer has a single step), and the number of steps."""
    reasoning = scores[:-1]
    return {
        "recognition": scores[-1],
        "reasoning": sum(reasoning) / len(reasoning) if reasoning else 0.0,
        "steps": float(len(scores)),
    }


def cot_scores(replies: list[str | None], alpha: float = COT_ALPHA) -> dict[str, float | int]:
    """Corpus recognition, reasoning and CoT scores (in [0, 1]) over the samples whose reply parses, plus the
    mean step count, how many parsed (`n`) and how many did not (`unparsed`)."""
    per = [step_metrics(s) for s in (parse_step_scores(r) for r in replies) if s]
    n = len(per)

    def mean(key: str) -> float:
        return sum(p[key] for p in per) / n if n else 0.0

    recognition, reasoning = mean("recognition"), mean("reasoning")
    return {
        "recognition": recognition,
        "reasoning": reasoning,
        "cot": alpha * recognition + (1 - alpha) * reasoning,
        "steps": mean("steps"),
        "n": n,
        "unparsed": len(replies) - n,
    }


LAUGHTER_DIMENSIONS = {
    "logical": "Logical Judgment Dimension",
    "multimodal": "Multimodal Content Association Dimension",
}


def parse_dimension(reply: str | None, dimension: str) -> int:
    """The integer after `<dimension name>:` in a laughter-reasoning reply; 0 when absent (as the reference)."""
    hit = re.search(rf"{re.escape(LAUGHTER_DIMENSIONS[dimension])}:\s*(\d+)", reply or "", re.I)
    return int(hit.group(1)) if hit else 0


def laughter_scores(replies: list[dict[str, str | None]]) -> dict[str, float | int]:
    """Mean logical, multimodal and total (their sum, 0-10) ratings over samples; `replies` hold one reply per
    dimension."""
    n = len(replies)
    logical = [parse_dimension(r.get("logical"), "logical") for r in replies]
    multimodal = [parse_dimension(r.get("multimodal"), "multimodal") for r in replies]
    return {
        "logical": sum(logical) / n if n else 0.0,
        "multimodal": sum(multimodal) / n if n else 0.0,
        "total": (sum(logical) + sum(multimodal)) / n if n else 0.0,
        "n": n,
    }
