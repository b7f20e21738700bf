"""Caption datasets for fine-tuning: read CSV / JSONL / `datasets` folders, validate every row, build SFT targets.

A caption file has one row per clip with columns:

- `video`: media path, relative to the caption file's folder (`file_name` is accepted, as in HF video
  folders). A row may instead give only `audio` for an audio-only clip.
- `caption`: free text, and/or `emotions`: a list (JSONL) or a list string (`happy, surprised`, `["happy"]`).
- optional `id`, `subtitle` (the transcript text, or a path to a .txt/.srt/.vtt file), `audio` (a separate
  audio track), `valence` (-1..1).

Each row becomes an SFT target in the canonical response format (`affectreason.rationale`): a caption already
in that format is kept; free text becomes the reasoning (its emotions are read from the `emotions` column,
else extracted from the text); emotions without a caption become a short answer.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.media import TRANSCRIPT_SUFFIXES
from affectreason.rationale import Rationale, parse_rationale, render_canonical

PROBLEM_KINDS = (
    "bad_row",
    "missing_media",
    "missing_file",
    "undecodable",
    "empty_caption",
    "duplicate_id",
    "bad_labels",
    "bad_value",
)
_ALIASES = {"file_name": "video", "transcript": "subtitle", "emotion": "emotions", "labels": "emotions"}
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
        return not self.problems

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
        if self.ok:
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


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _read_csv(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from enumerate(csv.DictReader(handle), start=1)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as handle:
        row = 0
        for line in handle:
            if not line.strip():
                continue
            row += 1
            try:
                yield row, json.loads(line)
            except json.JSONDecodeError as exc:
                yield row, ValueError(f"not JSON: {exc.msg}")


def _read_saved_dataset(path: Path) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise AffectReasonError(f"{path}: not a saved `datasets` folder ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise AffectReasonError(f"{path}: the dataset has no 'train' split (splits: {', '.join(ds)})")
        ds = ds["train"]
    yield from enumerate(ds, start=1)


def _records(path: Path) -> tuple[Iterator[tuple[int, Any]], Path]:
    """Raw rows and the folder media paths are relative to."""
    if not path.exists():
        raise AffectReasonError(f"caption file not found: {path}")
    if path.is_dir():
        for name in ("metadata.jsonl", "metadata.csv"):
            if (path / name).is_file():
                return _records(path / name)[0], path
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return _read_saved_dataset(path), path
        raise AffectReasonError(
            f"{path}: a folder needs metadata.csv / metadata.jsonl or a saved `datasets` dataset"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path), path.parent
    if suffix in {".jsonl", ".json"}:
        return _read_jsonl(path), path.parent
    raise AffectReasonError(
        f"{path}: unsupported caption file type {suffix or '(none)'}; use .csv, .jsonl or a folder"
    )


def _normalise_columns(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        name = str(key).strip().lower() if key is not None else ""
        out[_ALIASES.get(name, name)] = value
    return out


def _resolve(root: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


def _row(number: int, record: dict[str, Any], root: Path) -> tuple[CaptionExample | None, list[Problem], str]:
    rec = _normalise_columns(record)
    video, audio = _text(rec.get("video")), _text(rec.get("audio"))
    media = video or audio
    row_id = _text(rec.get("id")) or (str(Path(media).with_suffix("")) if media else f"row{number}")
    problems: list[Problem] = []

    def problem(kind: str, message: str) -> None:
        problems.append(Problem(kind, number, row_id, message))

    if not video and not audio:
        problem("missing_media", "no video (or audio) path")
    example = CaptionExample(
        id=row_id,
        row=number,
        video=_resolve(root, video) if video else None,
        audio=_resolve(root, audio) if audio else None,
        caption=_text(rec.get("caption")),
        subtitle=_text(rec.get("subtitle")) or None,
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
        problem("empty_caption", "no caption and no emotions")
    return (None if problems else example), problems, row_id


def _decode_problem(example: CaptionExample) -> Problem | None:
    from affectreason.errors import MediaError
    from affectreason.media import load_clip

    for path in (example.video, example.audio):
        if not path:
            continue
        try:
            load_clip(path, frames=2, max_pixels=64 * 64, audio=True)
        except MediaError as exc:
            return Problem("undecodable", example.row, example.id, str(exc))
    return None


def validate_captions(path: str | Path, *, decode: bool = True, workers: int = 4) -> ValidationReport:
    """Check every row of a caption file: structure, labels, values, duplicate ids, files, and (with
    `decode`) that each media file decodes through `load_clip`."""
    path = Path(path)
    records, root = _records(path)
    report = ValidationReport(path=str(path))
    seen: dict[str, int] = {}
    for number, record in records:
        report.rows += 1
        if isinstance(record, Exception) or not isinstance(record, dict):
            reason = str(record) if isinstance(record, Exception) else f"expected an object, got {record!r}"
            report.problems.append(Problem("bad_row", number, f"row{number}", reason))
            continue
        example, problems, key = _row(number, record, root)
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
            decoded = list(pool.map(_decode_problem, report.examples))
        failed = {p.row for p in decoded if p is not None}
        report.problems.extend(p for p in decoded if p is not None)
        report.examples = [e for e in report.examples if e.row not in failed]
    report.problems.sort(key=lambda p: (p.row, PROBLEM_KINDS.index(p.kind)))
    if report.rows == 0:
        raise AffectReasonError(f"{path}: no rows")
    return report


def load_captions(path: str | Path) -> list[CaptionExample]:
    """The rows of a caption file for training; any problem is one error line pointing to `data validate`."""
    report = validate_captions(path, decode=False)
    if not report.ok:
        first = report.problems[0]
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
