"""Caption datasets for fine-tuning: read CSV / JSONL / JSON / ShareGPT / `datasets` folders, validate every row,
build SFT targets, and convert any of these layouts into our JSONL.

A caption file has one row per clip with columns:

- `video`: media path, relative to the caption file's folder (`file_name` is accepted, as in HF video
  folders). A row may instead give only `audio` for an audio-only clip.
- `caption`: free text, and/or `emotions`: a list (JSONL) or a list string (`happy, surprised`, `["happy"]`).
- optional `id`, `subtitle` (the transcript text, or a path to a .txt/.srt/.vtt file), `audio` (a separate
  audio track), `valence` (-1..1).

The ShareGPT / `messages` layouts of LLaMA-Factory and ms-swift are read as well: a row with `messages` (or
`conversations`) turns of `role`/`content` (or `from`/`value`), the clip in `videos` / `audios` lists (one clip
per row), `<video>` / `<audio>` placeholders in the user text, and the last assistant turn as the caption.
A `.json` file may hold a JSON array of rows instead of one row per line.

Each row becomes an SFT target in the canonical response format (`affectreason.rationale`): a caption already
in that format is kept; free text becomes the reasoning (its emotions are read from the `emotions` column,
else extracted from the text); emotions without a caption become a short answer.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.media import TRANSCRIPT_SUFFIXES
from affectreason.rationale import Rationale, parse_rationale, render_canonical
from affectreason.train.caption_files import from_conversation, normalise_columns, read_rows, text_of

PROBLEM_KINDS = (
    "bad_row",
    "missing_media",
    "missing_file",
    "undecodable",
    "empty_caption",
    "duplicate_id",
    "bad_labels",
    "bad_value",
    "not_canonical",
    "unmapped_label",
)
# Reported, but a row with only these still trains (an open-vocabulary label may be meant to be off the wheel).
WARNING_KINDS = frozenset({"unmapped_label"})
_MAX_LABEL_WORDS = 3
_HAS_LETTER = re.compile(r"[^\W\d_]")


@dataclass
class CaptionExample:
    """One validated row: absolute media paths, the caption and/or emotions, and the row number (1-based)."""

    id: str
    row: int
    video: str | None = None
    audio: str | None = None
    caption: str = ""
    emotions: list[str] = field(default_factory=list)
    subtitle: str | None = None
    valence: float | None = None

    @property
    def media(self) -> str:
        return self.video or self.audio or ""


@dataclass
class Problem:
    kind: str
    row: int
    id: str
    message: str


@dataclass
class ValidationReport:
    """Every problem found in a caption file, with the rows that passed."""

    path: str
    rows: int = 0
    examples: list[CaptionExample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        """The problems that stop a row from training (warnings excluded)."""
        return [p for p in self.problems if p.kind not in WARNING_KINDS]

    def counts(self) -> dict[str, int]:
        counts = Counter(p.kind for p in self.problems)
        return {k: counts[k] for k in PROBLEM_KINDS if counts[k]}

    def first(self, limit: int = 5) -> dict[str, list[Problem]]:
        """The first `limit` problems of each kind."""
        out: dict[str, list[Problem]] = {}
        for p in self.problems:
            bucket = out.setdefault(p.kind, [])
            if len(bucket) < limit:
                bucket.append(p)
        return out

    def summary(self) -> str:
        if not self.problems:
            return f"{self.path}: {self.rows} rows, no problems"
        parts = ", ".join(f"{k}: {n}" for k, n in self.counts().items())
        return f"{self.path}: {len(self.problems)} problems in {self.rows} rows ({parts})"

    def to_dict(self, limit: int = 5) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "valid_rows": len(self.examples),
            "ok": self.ok,
            "counts": self.counts(),
            "first": {k: [vars(p) for p in ps] for k, ps in self.first(limit).items()},
        }


def parse_emotions(value: Any) -> list[str]:
    """Emotion labels from a list or a list string; raises ValueError with a short reason when malformed."""
    from affectreason.taxonomy.lexicon import split_labels

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("[") or text.endswith("]"):
            value = _literal_list(text)
        elif any(c in text for c in "{}[]"):
            raise ValueError(f"stray brackets in {text!r}")
    if isinstance(value, str):
        labels = split_labels(value)
    elif isinstance(value, (list, tuple)):
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise ValueError(f"non-text label {bad[0]!r}")
        labels = split_labels(list(value))
    else:
        raise ValueError(f"expected a list of labels, got {type(value).__name__} {value!r}")
    for label in labels:
        if not _HAS_LETTER.search(label):
            raise ValueError(f"label {label!r} has no letters")
        if len(label.split()) > _MAX_LABEL_WORDS:
            raise ValueError(f"{label!r} is not one label (separate labels with commas)")
    return labels


def _literal_list(text: str) -> list[Any]:
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            continue
        if isinstance(parsed, (list, tuple)):
            return list(parsed)
    raise ValueError(f"cannot read {text!r} as a list")


def _parse_valence(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"valence {value!r} is not a number") from None
    if math.isnan(number):
        return None
    if not -1.0 <= number <= 1.0:
        raise ValueError(f"valence {number} is outside -1..1")
    return number


def _resolve(root: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


def _check_row(
    number: int, record: dict[str, Any], root: Path, canonical: bool = False
) -> tuple[CaptionExample | None, list[Problem], str]:
    """Read and check one caption row: its example (None when a problem is an error), its problems, its id."""
    structural: list[str] = []
    if "messages" in record or "conversations" in record:
        record, structural = from_conversation(record)
    rec = normalise_columns(record)
    video, audio = text_of(rec.get("video")), text_of(rec.get("audio"))
    media = video or audio
    row_id = text_of(rec.get("id")) or (str(Path(media).with_suffix("")) if media else f"row{number}")
    problems: list[Problem] = []

    def problem(kind: str, message: str) -> None:
        problems.append(Problem(kind, number, row_id, message))

    for message in structural:
        problem("bad_row", message)
    if not video and not audio:
        problem("missing_media", "no video (or audio) path")
    example = CaptionExample(
        id=row_id,
        row=number,
        video=_resolve(root, video) if video else None,
        audio=_resolve(root, audio) if audio else None,
        caption=text_of(rec.get("caption")),
        subtitle=text_of(rec.get("subtitle")) or None,
    )
    subtitle_file = None
    if example.subtitle and Path(example.subtitle).suffix.lower() in TRANSCRIPT_SUFFIXES:
        example.subtitle = subtitle_file = _resolve(root, example.subtitle)
    for label, path in (("video", example.video), ("audio", example.audio), ("subtitle", subtitle_file)):
        if path and not Path(path).is_file():
            problem("missing_file", f"{label} file not found: {path}")
    try:
        example.emotions = parse_emotions(rec.get("emotions"))
    except ValueError as exc:
        problem("bad_labels", str(exc))
    try:
        example.valence = _parse_valence(rec.get("valence"))
    except ValueError as exc:
        problem("bad_value", str(exc))
    if not example.caption and not example.emotions and not any(p.kind == "bad_labels" for p in problems):
        problem("empty_caption", "no caption and no emotions (an empty target)")
    if canonical and example.caption and not parse_rationale(example.caption).parse_ok:
        problem("not_canonical", "the caption is not in the canonical response format the recipe expects")
    for label in _unmapped(example.emotions):
        problem("unmapped_label", f"label {label!r} maps to no emotion-wheel family")
    errors = [p for p in problems if p.kind not in WARNING_KINDS]
    return (None if errors else example), problems, row_id


def _unmapped(labels: list[str]) -> list[str]:
    if not labels:
        return []
    from affectreason.taxonomy import match_label

    # the lexicon first; the semantic fallback (sentence embeddings) only for what it cannot read
    lexical = [label for label in labels if match_label(label, semantic=False).word is None]
    return [label for label in lexical if match_label(label).word is None]


def _decode_problems(example: CaptionExample) -> list[Problem]:
    """Every media file of the row that does not decode (video and audio both checked)."""
    from affectreason.errors import MediaError
    from affectreason.media import load_clip

    problems = []
    for path in (example.video, example.audio):
        if not path:
            continue
        try:
            load_clip(path, frames=2, max_pixels=64 * 64, audio=True)
        except MediaError as exc:
            problems.append(Problem("undecodable", example.row, example.id, str(exc)))
    return problems


def validate_captions(
    path: str | Path, *, decode: bool = True, workers: int = 4, canonical: bool = False
) -> ValidationReport:
    """Check every row of a caption file: structure, labels, values, duplicate ids, files, (with `canonical`)
    that captions are already in the canonical format, and (with `decode`) that each media file decodes."""
    path = Path(path)
    records, root = read_rows(path)
    report = ValidationReport(path=str(path))
    seen: dict[str, int] = {}
    for number, record in records:
        report.rows += 1
        if isinstance(record, Exception) or not isinstance(record, dict):
            reason = str(record) if isinstance(record, Exception) else f"expected an object, got {record!r}"
            report.problems.append(Problem("bad_row", number, f"row{number}", reason))
            continue
        example, problems, key = _check_row(number, record, root, canonical)
        report.problems.extend(problems)
        if key in seen:
            report.problems.append(
                Problem("duplicate_id", number, key, f"id {key!r} also on row {seen[key]}")
            )
            example = None
        else:
            seen[key] = number
        if example is not None:
            report.examples.append(example)
    if decode and report.examples:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            decoded = [p for found in pool.map(_decode_problems, report.examples) for p in found]
        failed = {p.row for p in decoded}
        report.problems.extend(decoded)
        report.examples = [e for e in report.examples if e.row not in failed]
    report.problems.sort(key=lambda p: (p.row, PROBLEM_KINDS.index(p.kind)))
    if report.rows == 0:
        raise AffectReasonError(f"{path}: no rows")
    return report


def load_captions(path: str | Path, canonical: bool = False) -> list[CaptionExample]:
    """The rows of a caption file for training; any problem is one error line pointing to `data validate`."""
    report = validate_captions(path, decode=False, canonical=canonical)
    if not report.ok:
        first = report.errors[0]
        raise AffectReasonError(
            f"{report.summary()}; first: row {first.row} {first.message}; run `affectreason data validate {path}`"
        )
    return report.examples


def target_rationale(example: CaptionExample) -> Rationale:
    """The SFT target for a row (see the module docstring for the rules)."""
    parsed = parse_rationale(example.caption) if example.caption else None
    if parsed is not None and parsed.parse_ok:
        rationale = parsed
        if example.emotions:
            rationale.emotions = list(example.emotions)
    else:
        emotions = list(example.emotions)
        if not emotions and example.caption:
            from affectreason.taxonomy import extract_labels

            emotions = list(extract_labels(example.caption))
        rationale = Rationale(reasoning=example.caption, emotions=emotions)
    if example.valence is not None:
        rationale.valence = example.valence
    return rationale


def target_text(example: CaptionExample) -> str:
    return render_canonical(target_rationale(example))


def training_rows(examples: list[CaptionExample]) -> list[dict[str, Any]]:
    """Plain rows for a `datasets.Dataset`: media paths, subtitle and the rendered target; media is decoded
    later, by the collator, inside the dataloader workers."""
    return [
        {"id": e.id, "video": e.video, "audio": e.audio, "subtitle": e.subtitle, "target": target_text(e)}
        for e in examples
    ]


def data_summary(examples: list[CaptionExample]) -> dict[str, Any]:
    """Counts for the model card and run manifest."""
    labels = Counter(label.lower() for e in examples for label in e.emotions)
    return {
        "rows": len(examples),
        "with_caption": sum(1 for e in examples if e.caption),
        "with_emotions": sum(1 for e in examples if e.emotions),
        "with_subtitle": sum(1 for e in examples if e.subtitle),
        "top_emotions": dict(labels.most_common(10)),
    }


def _relative(path: str | None, folder: Path) -> str | None:
    if not path:
        return path
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive on Windows
        return path


def convert_captions(path: str | Path, out: str | Path) -> ValidationReport:
    """Write the valid rows of any supported layout as our JSONL (media paths relative to `out`'s folder)."""
    out = Path(out)
    if out.exists() and out.resolve() == Path(path).resolve():
        raise AffectReasonError(f"{out} is the input file: write the conversion elsewhere")
    report = validate_captions(path, decode=False)
    folder = out.parent.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for e in report.examples:
            subtitle = e.subtitle
            if subtitle and Path(subtitle).is_absolute() and Path(subtitle).is_file():
                subtitle = _relative(subtitle, folder)
            row = {
                "id": e.id,
                "video": _relative(e.video, folder),
                "audio": _relative(e.audio, folder),
                "caption": e.caption,
                "emotions": e.emotions,
                "subtitle": subtitle,
                "valence": e.valence,
            }
            handle.write(json.dumps({k: v for k, v in row.items() if v not in (None, "", [])}) + "\n")
    return report
