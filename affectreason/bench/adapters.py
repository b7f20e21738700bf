"""Dataset adapters: read the released annotation formats and folder layout into `Sample`s, and check them."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectreason.bench.emobench_m import read_conversations
from affectreason.bench.mme_emotion import read_clues, read_questions
from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from affectreason.bench.spec import DatasetSpec

# In order of preference when a name exists with several extensions (MER2023: `.mp4`, else `.avi`).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".wmv")
_NAME_COLUMNS = ("name", "names")
_DESCRIPTION_COLUMNS = ("reason", "reasons", "english", "description")


@dataclass
class Sample:
    """One benchmark item: its dataset, name, resolved video (None when missing), transcript and reference.

    `reference` holds what the `score` library reads for the dataset's task: `label` (discrete), `valence`
    (sentiment), `emotions` (open-vocabulary list), `description` (EMER).
    """

    dataset: str
    id: str
    video: Path | None
    transcript: str | None
    reference: dict[str, Any]


@dataclass
class DatasetScan:
    """What was found for one dataset: its samples, fatal problems, missing videos, the files read."""

    spec: DatasetSpec
    root: Path
    folder: Path
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing_videos: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    video_dirs: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing_videos

    def summary(self) -> str:
        """One clause for the error line: what is missing, with counts."""
        parts = list(self.problems)
        if self.missing_videos:
            where = ", ".join(_rel(d, self.root) for d in self.video_dirs) or (
                f"{self.folder.name}/{{{','.join(self.spec.video_dirs)}}} (no such folder)"
            )
            examples = ", ".join(self.missing_videos[:3]) + (", ..." if len(self.missing_videos) > 3 else "")
            parts.append(
                f"{len(self.missing_videos)} of {len(self.samples)} videos missing in {where} (e.g. {examples})"
            )
        return f"{self.spec.name}: " + "; ".join(parts)


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a released CSV (UTF-8, with or without a byte-order mark) and its header."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = [{(k or "").strip(): (v or "") for k, v in row.items()} for row in reader]
            return [h.strip() for h in reader.fieldnames or []], rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AffectReasonError(f"cannot read {path}: {exc}") from None


def _column(header: list[str], choices: tuple[str, ...], path: Path) -> str:
    for name in choices:
        if name in header:
            return name
    raise AffectReasonError(
        f"{path.name} has no '{choices[0]}' column (columns: {', '.join(header) or 'none'})"
    )


def read_name_column(path: Path, column: str) -> dict[str, str]:
    """`name` → the chosen column of a CSV (subtitles, open-set labels, descriptions), in file order."""
    header, rows = read_csv(path)
    key = _column(header, _NAME_COLUMNS, path)
    value = _column(header, (column,), path)
    return {row[key].strip(): row[value] for row in rows if row[key].strip()}


def load_label_corpus(path: Path, split: str) -> dict[str, dict[str, Any]]:
    """One split of a released `label*.npz` file: sample name → `{"emo": …, "val": …}`."""
    from affectreason.bench.npz import load_npz

    data = load_npz(path)  # the released files hold pickled dicts: read with a data-only unpickler
    if split not in data:
        raise AffectReasonError(f"{path.name} has no '{split}' (has: {', '.join(data)})")
    corpus = data[split]
    corpus = corpus.item() if corpus.shape == () else corpus.tolist()
    if not isinstance(corpus, dict):
        raise AffectReasonError(f"{path.name}: '{split}' is not a name → record mapping")
    return {str(k): (v if isinstance(v, dict) else {"emo": v}) for k, v in corpus.items()}


def _discrete_label(value: Any, spec: DatasetSpec, name: str) -> str:
    """A released label: a string, or an index into the dataset's label space (MELD, IEMOCAP)."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        return value.strip().lower()
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise AffectReasonError(
            f"{spec.name}: sample {name} has label {value!r}, not a name or an index"
        ) from None
    space = spec.label_space or ()
    if not 0 <= index < len(space):
        raise AffectReasonError(
            f"{spec.name}: sample {name} has label index {index} outside the label space ({len(space)} labels)"
        )
    return space[index]


def _npz_references(spec: DatasetSpec, path: Path) -> dict[str, dict[str, Any]]:
    corpus = load_label_corpus(path, spec.split or "test_corpus")
    refs: dict[str, dict[str, Any]] = {}
    for name, entry in corpus.items():
        if spec.name_prefix and not name.startswith(spec.name_prefix):
            continue
        if spec.label_field == "val":
            if entry.get("val") is None:
                raise AffectReasonError(f"{spec.name}: sample {name} has no 'val' in {path.name}")
            refs[name] = {"valence": float(entry["val"])}
        else:
            refs[name] = {"label": _discrete_label(entry.get(spec.label_field), spec, name)}
    return refs


def open_labels(value: str) -> list[str]:
    """A released `openset` cell as the reference loader reads it: its list parser, and empty means neutral."""
    from affectreason.taxonomy.ovmer import string_to_list

    return string_to_list(value) or ["neutral"]


def _openset_references(spec: DatasetSpec, path: Path) -> dict[str, dict[str, Any]]:
    return {
        name: {"emotions": open_labels(value)} for name, value in read_name_column(path, "openset").items()
    }


def _emer_references(spec: DatasetSpec, path: Path) -> dict[str, dict[str, Any]]:
    header, rows = read_csv(path)
    key = _column(header, _NAME_COLUMNS, path)
    emotions = _column(header, ("emotions", "emotion"), path)
    reasons = _column(header, _DESCRIPTION_COLUMNS, path)
    subtitles = next((c for c in ("subtitles", "subtitle") if c in header), None)
    refs = {}
    for row in rows:
        name = row[key].strip()
        if name:
            refs[name] = {"emotions": open_labels(row[emotions]), "description": row[reasons]}
            if subtitles:
                refs[name]["_transcript"] = row[subtitles]
    return refs


def _reason_references(spec: DatasetSpec, path: Path) -> dict[str, dict[str, Any]]:
    header, _ = read_csv(path)
    descriptions = read_name_column(path, _column(header, _DESCRIPTION_COLUMNS, path))
    return {name: {"description": text} for name, text in descriptions.items()}


# format name → reader of the annotation file into name → reference, in file order.
ADAPTERS: dict[str, Callable[[DatasetSpec, Path], dict[str, dict[str, Any]]]] = {
    "npz": _npz_references,
    "openset_csv": _openset_references,
    "emer_csv": _emer_references,
    "reason_csv": _reason_references,
    "mme_json": read_questions,
    "conversations_json": read_conversations,
}


def video_index(dirs: list[Path]) -> dict[str, Path]:
    """Sample name → video file over the candidate folders (earlier folders and extensions win)."""
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    index: dict[str, tuple[int, int, Path]] = {}
    for d, folder in enumerate(dirs):
        with os.scandir(folder) as entries:
            for entry in entries:
                stem, ext = os.path.splitext(entry.name)
                ext = ext.lower()
                if ext not in rank or not entry.is_file():
                    continue
                key = (d, rank[ext], Path(entry.path))
                if stem not in index or key[:2] < index[stem][:2]:
                    index[stem] = key
    return {name: value[2] for name, value in index.items()}


def resolve_data_root(data_root: str | Path, specs: list[DatasetSpec]) -> Path:
    """The directory holding the dataset folders; a parent holding `dataset/` is accepted too."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise AffectReasonError(f"data root '{root}' is not a directory")
    nested = root / "dataset"
    if nested.is_dir() and not any((root / s.folder).is_dir() for s in specs if s.folder != "."):
        return nested
    return root


def scan_dataset(spec: DatasetSpec, root: Path) -> DatasetScan:
    """Read one dataset's annotations, subtitles and video folder; collect what is missing instead of raising."""
    folder = (root / spec.folder).resolve() if spec.folder != "." else root.resolve()
    scan = DatasetScan(spec=spec, root=root.resolve(), folder=folder)
    where = spec.folder if spec.folder != "." else "."
    annotation = next((folder / a for a in spec.annotation if (folder / a).is_file()), None)
    if annotation is None:
        tried = " or ".join(f"{where}/{a}" for a in spec.annotation)
        scan.problems.append(f"annotation {tried} not found")
        return scan
    try:
        refs = ADAPTERS[spec.format](spec, annotation)
        scan.files.append(annotation)
        subtitles = _read_subtitles(spec, folder, scan)
        if spec.labels_file:
            labels = folder / spec.labels_file
            if not labels.is_file():
                raise AffectReasonError(f"labels file {where}/{spec.labels_file} not found")
            scan.files.append(labels)
            for name, value in read_name_column(labels, "openset").items():
                if name in refs:
                    refs[name]["emotions"] = open_labels(value)
        if spec.clues:
            paths = sorted(folder.glob(spec.clues))
            scan.files.extend(paths)
            for name, clue in read_clues(paths).items():
                if name in refs:
                    refs[name]["clue"] = clue
    except AffectReasonError as exc:
        scan.problems.append(str(exc))
        return scan
    names = list(refs)
    if spec.names_from == "subtitles" and subtitles is not None:
        names = list(subtitles)
        unlabelled = [n for n in names if n not in refs]
        if unlabelled:
            scan.problems.append(
                f"{len(unlabelled)} of {len(names)} subtitle rows have no label in {annotation.name} "
                f"(e.g. {', '.join(unlabelled[:3])})"
            )
            return scan
    if not names:
        scan.problems.append(
            f"{annotation.name} holds no samples"
            + (f" named {spec.name_prefix}*" if spec.name_prefix else "")
        )
        return scan
    scan.video_dirs = [folder / d for d in spec.video_dirs if (folder / d).is_dir()]
    by_path = all("_video" in refs[n] for n in names)  # the annotation gives each video's relative path
    videos = {} if by_path else video_index(scan.video_dirs)
    for name in names:
        ref = dict(refs[name])
        transcript = ref.pop("_transcript", None)
        if subtitles is not None:
            transcript = subtitles.get(name, transcript)
        relative = ref.pop("_video", None)
        video = videos.get(name) if relative is None else _video_at(scan.video_dirs, relative)
        if video is None:
            scan.missing_videos.append(name)
        scan.samples.append(Sample(spec.name, name, video, (transcript or "").strip() or None, ref))
    return scan


def _video_at(dirs: list[Path], relative: str) -> Path | None:
    """The first existing `dir/relative`; a path that is absolute or climbs out with `..` is never looked up."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        return None
    return next((folder / relative for folder in dirs if (folder / relative).is_file()), None)


def _read_subtitles(spec: DatasetSpec, folder: Path, scan: DatasetScan) -> dict[str, str] | None:
    if spec.subtitles is None:
        return None
    path = folder / spec.subtitles.file
    if not path.is_file():
        where = spec.folder if spec.folder != "." else "."
        raise AffectReasonError(f"subtitles {where}/{spec.subtitles.file} not found")
    scan.files.append(path)
    return read_name_column(path, spec.subtitles.column)


def check_data(specs: list[DatasetSpec], data_root: str | Path) -> list[DatasetScan]:
    """Scan every dataset; raise one line listing everything missing (with counts) if any is incomplete."""
    root = resolve_data_root(data_root, specs)
    scans = [scan_dataset(spec, root) for spec in specs]
    bad = [s.summary() for s in scans if not s.ok]
    if bad:
        raise AffectReasonError(f"data root '{root}' is incomplete: " + " | ".join(bad))
    return scans
