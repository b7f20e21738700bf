"""Prediction records: built from model text or a rationale, summarised over a timeline, rendered for the
terminal, and written to JSONL / JSON as soon as each exists."""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from affectreason.describe.options import DescribeOptions
from affectreason.engines.base import Engine
from affectreason.media import Clip
from affectreason.prompts import Prompt
from affectreason.rationale import FORMAT_VERSION, Rationale, parse_rationale, render_text

TIMELINE_KEYS = (
    "emotions",
    "families",
    "visual_cues",
    "acoustic_cues",
    "lexical_cues",
    "reasoning",
    "valence",
    "arousal",
    "confidence",
    "parse_ok",
    "raw",
)


def _families(emotions: list[str]) -> list[str | None]:
    from affectreason.taxonomy import family_of

    return [family_of(e) for e in emotions]


def record_from_text(
    clip: Clip, text: str, engine: Engine, options: DescribeOptions, prompt: Prompt
) -> dict[str, Any]:
    """One prediction record: the parsed rationale plus everything needed to reproduce it."""
    rationale = parse_rationale(text)
    return record_from_rationale(clip, rationale, engine, options, prompt)


def record_from_rationale(
    clip: Clip, rationale: Rationale, engine: Engine, options: DescribeOptions, prompt: Prompt
) -> dict[str, Any]:
    record: dict[str, Any] = {"id": clip.id, "source": clip.source}
    record.update(rationale.to_dict())
    record["transcript"] = clip.transcript
    record["families"] = _families(rationale.emotions)
    record.update(
        model=getattr(engine, "model_id", None),
        adapter=getattr(engine, "adapter", None)
        or getattr(getattr(engine, "backbone", None), "adapter", None),
        engine=getattr(engine, "name", None),
        prompt_version=prompt.id,
        format_version=FORMAT_VERSION,
        decoding=options.decoding(),
    )
    return record


def summarise_timeline(windows: list[Rationale]) -> Rationale:
    """Deterministic summary of per-window rationales: emotions ranked by how many windows name them
    (ties by first appearance and salience), cues pooled without repeats, affect averaged."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for rationale in windows:
        for rank, emotion in enumerate(rationale.emotions):
            key = emotion.lower()
            counts[key] += 1
            first_seen.setdefault(key, len(first_seen) * 100 + rank)
    emotions = sorted(counts, key=lambda e: (-counts[e], first_seen[e]))

    def pooled(attr: str) -> list[str]:
        seen: dict[str, None] = {}
        for rationale in windows:
            for cue in getattr(rationale, attr):
                seen.setdefault(cue, None)
        return list(seen)

    def mean(attr: str) -> float | None:
        values = [getattr(r, attr) for r in windows if getattr(r, attr) is not None]
        return round(sum(values) / len(values), 4) if values else None

    reasoning = " ".join(f"[{i + 1}] {r.reasoning}" for i, r in enumerate(windows) if r.reasoning)
    return Rationale(
        emotions=emotions,
        visual_cues=pooled("visual_cues"),
        acoustic_cues=pooled("acoustic_cues"),
        lexical_cues=pooled("lexical_cues"),
        reasoning=reasoning,
        valence=mean("valence"),
        arousal=mean("arousal"),
        confidence=mean("confidence"),
        raw="",
        parse_ok=bool(windows) and all(r.parse_ok for r in windows),
    )


def format_record_text(record: dict[str, Any]) -> str:
    """The terminal rendering of one record (with emotion families and, for long clips, the timeline)."""
    rationale = Rationale.from_dict(record)
    families = record.get("families") or []
    labelled = [f"{e} ({f})" if f else e for e, f in zip(rationale.emotions, families)]
    lines = [render_text(rationale, title=f"{record['id']}  [{record['source']}]")]
    if labelled:
        lines.append(f"  families  {', '.join(labelled)}")
    for window in record.get("timeline", []):
        emotions = ", ".join(window["emotions"]) or "-"
        lines.append(f"  {window['start']:7.1f}-{window['end']:<7.1f} {emotions}")
    if "attribution" in record:
        from affectreason.attribution_report import attribution_lines

        lines.extend(attribution_lines(record))
    return "\n".join(lines)


class RecordWriter:
    """Writes each record as soon as it exists: JSONL appended line by line, or a JSON list kept valid by
    overwriting only its closing bracket (O(record) per write, never the whole file)."""

    _CLOSE = b"\n]\n"

    def __init__(self, path: Path | None, keep: bool = True):
        self.path = path
        self.keep = keep  # keep the records in memory (for the JSON printed at the end)
        self.records: list[dict[str, Any]] = []
        self.count = 0
        self._handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".json":
                self._handle = path.open("wb")
                self._handle.write(b"[" + self._CLOSE)
                self._handle.flush()
            else:
                path.open("a", encoding="utf-8").close()

    def write(self, record: dict[str, Any]) -> None:
        self.count += 1
        if self.keep:
            self.records.append(record)
        if self.path is None:
            return
        if self._handle is not None:
            item = textwrap.indent(json.dumps(record, ensure_ascii=False, indent=2), "  ").encode("utf-8")
            self._handle.seek(-len(self._CLOSE), os.SEEK_END)
            self._handle.write((b",\n" if self.count > 1 else b"\n") + item + self._CLOSE)
            self._handle.flush()
        else:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
