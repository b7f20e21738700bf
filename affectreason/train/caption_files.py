"""Caption files in every accepted layout (CSV, JSONL, a JSON array, a `datasets` folder, HF video-folder
metadata, ShareGPT / `messages` conversations) read as numbered raw rows with our flat column names."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant"}
_PLACEHOLDERS = {"video": "<video>", "audio": "<audio>"}
_ALIASES = {"file_name": "video", "transcript": "subtitle", "emotion": "emotions", "labels": "emotions"}


def text_of(value: Any) -> str:
    """A cell as stripped text (None and NaN, as pandas-made CSVs hold them, are empty)."""
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


def _read_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise AffectReasonError(f"{path}: not a JSON array of rows ({str(exc).splitlines()[0]})") from None
    if not isinstance(rows, list):
        raise AffectReasonError(f"{path}: expected a JSON array of rows")
    yield from enumerate(rows, start=1)


def _starts_with_bracket(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as handle:
        head = handle.read(4096).lstrip("\ufeff \t\r\n")
    return head.startswith("[")


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


def read_rows(path: Path) -> tuple[Iterator[tuple[int, Any]], Path]:
    """Raw `(row number, row)` pairs (an exception for a row that does not parse) and the folder media paths
    are relative to."""
    if not path.exists():
        raise AffectReasonError(f"caption file not found: {path}")
    if path.is_dir():
        for name in ("metadata.jsonl", "metadata.csv"):
            if (path / name).is_file():
                return read_rows(path / name)[0], path
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return _read_saved_dataset(path), path
        raise AffectReasonError(
            f"{path}: a folder needs metadata.csv / metadata.jsonl or a saved `datasets` dataset"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path), path.parent
    if suffix == ".json" and _starts_with_bracket(path):
        return _read_json_array(path), path.parent
    if suffix in {".jsonl", ".json"}:
        return _read_jsonl(path), path.parent
    raise AffectReasonError(
        f"{path}: unsupported caption file type {suffix or '(none)'}; use .csv, .jsonl, .json or a folder"
    )


def _content_text(content: Any) -> str:
    """A turn's text: a string, or the text parts of an OpenAI-style content list."""
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return text_of(content)


def _media_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def from_conversation(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A ShareGPT / `messages` row as our flat columns, and its structural problems (all of them)."""
    turns = record.get("messages", record.get("conversations"))
    problems: list[str] = []
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        return {}, ["messages / conversations must be a list of turns (objects)"]
    user_text, answer = "", ""
    for turn in turns:
        role = _ROLES.get(str(turn.get("role", turn.get("from", ""))).lower())
        text = _content_text(turn.get("content", turn.get("value")))
        if role == "user":
            user_text += text
        elif role == "assistant":
            answer = text
    flat = {k: v for k, v in record.items() if k not in {"messages", "conversations", "videos", "audios"}}
    for kind, placeholder in _PLACEHOLDERS.items():
        paths = _media_list(record.get(f"{kind}s"))
        if len(paths) > 1:
            problems.append(f"{len(paths)} {kind}s in one row: one clip per row")
        marks = user_text.count(placeholder)
        if marks and marks != len(paths):
            problems.append(f"{marks} {placeholder} placeholders for {len(paths)} {kind} files")
        if paths:
            flat[kind] = paths[0]
    if _media_list(record.get("images")):
        problems.append("images are not supported: give video or audio clips")
    flat["caption"] = answer
    return flat, problems


def normalise_columns(record: dict[str, Any]) -> dict[str, Any]:
    """Column names lower-cased, stripped and mapped to ours (`file_name` -> `video`, `labels` -> `emotions`)."""
    out = {}
    for key, value in record.items():
        name = str(key).strip().lower() if key is not None else ""
        out[_ALIASES.get(name, name)] = value
    return out
