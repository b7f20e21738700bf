"""The Rationale type, the canonical tagged response format (its one grammar), a tolerant parser and renderers.

Canonical format, version `FORMAT_VERSION` (R1-style; prompts ask for it, SFT targets are written in it,
rewards and the evaluator parse it)::

    <think>
    Visual: cue; cue
    Acoustic: cue; cue
    Lexical: cue; cue
    Reasoning: free text
    </think>
    <answer>
    Emotions: most salient, next, ...
    Valence: -1.0 .. 1.0
    Arousal: 0.0 .. 1.0
    Confidence: 0.0 .. 1.0
    </answer>

The parser never raises: free text, half-closed tags, JSON and empty strings all give a Rationale whose
`parse_ok` says whether the canonical structure (both tags and a non-empty emotion list) was found.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = "ar-1"

MODALITIES = ("visual", "acoustic", "lexical")

_CUE_FIELDS = {"visual": "visual_cues", "acoustic": "acoustic_cues", "lexical": "lexical_cues"}
_CUE_ALIASES = {
    "visual": "visual",
    "video": "visual",
    "face": "visual",
    "acoustic": "acoustic",
    "audio": "acoustic",
    "voice": "acoustic",
    "vocal": "acoustic",
    "lexical": "lexical",
    "text": "lexical",
    "transcript": "lexical",
    "subtitle": "lexical",
    "speech content": "lexical",
}
_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|<answer>|$)", re.S | re.I)
_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_LINE_KEY_RE = re.compile(r"^\s*[-*]?\s*([A-Za-z ]{2,20})\s*:\s*(.*)$")
_NUMBER_RE = re.compile(r"[-+]?\d*\.?\d+")
_LIST_SPLIT_RE = re.compile(r"\s*(?:[;,\n]|\band\b)\s*")


@dataclass
class Rationale:
    """A parsed (or target) emotion rationale: cues by modality, reasoning, emotions, affect scalars."""

    emotions: list[str] = field(default_factory=list)
    visual_cues: list[str] = field(default_factory=list)
    acoustic_cues: list[str] = field(default_factory=list)
    lexical_cues: list[str] = field(default_factory=list)
    reasoning: str = ""
    valence: float | None = None
    arousal: float | None = None
    confidence: float | None = None
    raw: str = ""
    parse_ok: bool = False

    def cues(self, modality: str) -> list[str]:
        return getattr(self, _CUE_FIELDS[modality])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rationale:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _clean_list(text: str) -> list[str]:
    text = text.strip().strip("[]")
    items = [p.strip().strip("'\"`.").strip() for p in _LIST_SPLIT_RE.split(text)]
    return [i for i in items if i]


def _cue_list(text: str) -> list[str]:
    items = [p.strip().strip(".").strip() for p in re.split(r"\s*;\s*|\n", text)]
    return [i for i in items if i and i.lower() not in {"none", "n/a", "-"}]


def _number(text: str, low: float, high: float) -> float | None:
    match = _NUMBER_RE.search(text)
    if not match:
        return None
    try:
        value = float(match.group())
    except ValueError:
        return None
    if math.isnan(value):
        return None
    return min(high, max(low, value))


def _parse_json(text: str) -> Rationale | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    emotions = data.get("emotions") or data.get("emotion") or []
    if isinstance(emotions, str):
        emotions = _clean_list(emotions)
    rationale = Rationale(raw=text)
    rationale.emotions = [str(e).strip() for e in emotions if str(e).strip()]
    for modality, attr in _CUE_FIELDS.items():
        value = data.get(attr, data.get(modality, []))
        setattr(
            rationale, attr, [str(v) for v in value] if isinstance(value, list) else _cue_list(str(value))
        )
    rationale.reasoning = str(data.get("reasoning", ""))
    for key, low in (("valence", -1.0), ("arousal", 0.0), ("confidence", 0.0)):
        if data.get(key) is not None:
            setattr(rationale, key, _number(str(data[key]), low, 1.0))
    rationale.parse_ok = bool(rationale.emotions)
    return rationale


def _parse_think(block: str, rationale: Rationale) -> None:
    reasoning_lines: list[str] = []
    current: str | None = None
    for line in block.splitlines():
        match = _LINE_KEY_RE.match(line)
        key = match.group(1).strip().lower() if match else ""
        if match and key in _CUE_ALIASES:
            current = _CUE_ALIASES[key]
            getattr(rationale, _CUE_FIELDS[current]).extend(_cue_list(match.group(2)))
        elif match and key == "reasoning":
            current = "reasoning"
            reasoning_lines.append(match.group(2).strip())
        elif line.strip():
            if current in _CUE_FIELDS:
                getattr(rationale, _CUE_FIELDS[current]).extend(_cue_list(line))
            else:
                reasoning_lines.append(line.strip())
    rationale.reasoning = " ".join(s for s in reasoning_lines if s)


def _parse_answer(block: str, rationale: Rationale) -> None:
    emotion_text = None
    for line in block.splitlines():
        match = _LINE_KEY_RE.match(line)
        key = match.group(1).strip().lower() if match else ""
        value = match.group(2) if match else ""
        if key in {"emotions", "emotion", "labels"}:
            emotion_text = value
        elif key == "valence":
            rationale.valence = _number(value, -1.0, 1.0)
        elif key == "arousal":
            rationale.arousal = _number(value, 0.0, 1.0)
        elif key == "confidence":
            rationale.confidence = _number(value, 0.0, 1.0)
        elif not match and emotion_text is None and line.strip():
            emotion_text = line
    rationale.emotions = _clean_list(emotion_text or "")


def parse_rationale(text: str | None) -> Rationale:
    """Parse model output into a Rationale. Never raises; `parse_ok` is True only for the canonical form."""
    text = text if isinstance(text, str) else ""
    rationale = Rationale(raw=text)
    try:
        think = _THINK_RE.search(text)
        answer = _ANSWER_RE.search(text)
        if think is None and answer is None:
            from_json = _parse_json(text)
            if from_json is not None:
                from_json.parse_ok = False  # JSON is readable but not the canonical format
                return from_json
            _parse_think(text, rationale)
            return rationale
        if think is not None:
            _parse_think(think.group(1), rationale)
        if answer is not None:
            _parse_answer(answer.group(1), rationale)
        closed = bool(re.search(r"</think>\s*<answer>.*?</answer>", text, re.S | re.I))
        rationale.parse_ok = closed and think is not None and bool(rationale.emotions)
    except Exception:  # the parser is fed arbitrary model output and must never fail the caller
        rationale.parse_ok = False
    return rationale


def _fmt(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def render_canonical(rationale: Rationale) -> str:
    """Write a Rationale in the canonical format (used for SFT targets and as server response content)."""
    think = [
        f"Visual: {'; '.join(rationale.visual_cues) or 'none'}",
        f"Acoustic: {'; '.join(rationale.acoustic_cues) or 'none'}",
        f"Lexical: {'; '.join(rationale.lexical_cues) or 'none'}",
        f"Reasoning: {rationale.reasoning.strip() or 'none'}",
    ]
    answer = [f"Emotions: {', '.join(rationale.emotions)}"]
    for key in ("valence", "arousal", "confidence"):
        value = getattr(rationale, key)
        if value is not None:
            answer.append(f"{key.capitalize()}: {value:.2f}")
    return "<think>\n" + "\n".join(think) + "\n</think>\n<answer>\n" + "\n".join(answer) + "\n</answer>"


def render_text(rationale: Rationale, title: str = "") -> str:
    """A human-readable multi-line rendering for the terminal."""
    lines = [title] if title else []
    for modality in MODALITIES:
        cues = rationale.cues(modality)
        lines.append(f"  {modality:<9} {'; '.join(cues) if cues else '-'}")
    lines.append(f"  reasoning {rationale.reasoning or '-'}")
    lines.append(f"  emotions  {', '.join(rationale.emotions) if rationale.emotions else '-'}")
    lines.append(
        f"  valence {_fmt(rationale.valence)}  arousal {_fmt(rationale.arousal)}  "
        f"confidence {_fmt(rationale.confidence)}  parse_ok {rationale.parse_ok}"
    )
    return "\n".join(lines)


RATIONALE_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "affectreason rationale",
    "type": "object",
    "required": ["emotions", "visual_cues", "acoustic_cues", "lexical_cues", "reasoning", "parse_ok", "raw"],
    "properties": {
        "emotions": {"type": "array", "items": {"type": "string"}},
        "visual_cues": {"type": "array", "items": {"type": "string"}},
        "acoustic_cues": {"type": "array", "items": {"type": "string"}},
        "lexical_cues": {"type": "array", "items": {"type": "string"}},
        "reasoning": {"type": "string"},
        "valence": {"type": ["number", "null"], "minimum": -1, "maximum": 1},
        "arousal": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "raw": {"type": "string"},
        "parse_ok": {"type": "boolean"},
    },
}
