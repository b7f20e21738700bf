"""Append-only predictions JSONL keyed by (dataset, id): flushed per batch, resumable after any kill, mergeable."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError

PREDICTIONS = "predictions.jsonl"
MANIFEST = "run.json"

Key = tuple[str, str]


def key_of(record: dict[str, Any]) -> Key:
    return str(record["dataset"]), str(record["id"])


class PredictionStore:
    """`predictions.jsonl` in a run folder. Each batch is one write followed by fsync, so a run killed at any
    moment leaves whole lines plus at most one torn last line, which `load` cuts off before appending again."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / PREDICTIONS
        self.records: dict[Key, dict[str, Any]] = {}

    def load(self) -> dict[Key, dict[str, Any]]:
        """Read what is done (first record wins for a key), repairing a torn last line."""
        self.records = {}
        if not self.path.is_file():
            return self.records
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a write cut short by a kill: drop the partial line
            with self.path.open("r+b") as handle:
                handle.truncate(end)
            data = data[:end]
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = key_of(record)
            except (json.JSONDecodeError, KeyError, TypeError):
                raise AffectReasonError(f"{self.path} line {number} is not a prediction record") from None
            self.records.setdefault(key, record)
        return self.records

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records whose key is new, in one write, and make it durable before returning."""
        fresh = []
        for record in records:
            key = key_of(record)
            if key not in self.records:
                self.records[key] = record
                fresh.append(record)
        if not fresh:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in fresh)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return len(fresh)

    def clear(self) -> None:
        self.records = {}
        self.path.unlink(missing_ok=True)


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise AffectReasonError(f"{path} is not valid JSON") from None


def write_json(path: str | Path, value: Any) -> None:
    """Write JSON atomically (temp file then rename), so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# Settings that must agree for predictions to be resumed into, or merged with, a run.
COMPATIBLE_KEYS = (
    "suite",
    "model",
    "adapter",
    "prompt_version",
    "decoding",
    "sampling",
    "data_files",
    "attribution",
    "judge",
    "dataset_prompts",
)


def incompatibility(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The first setting on which two run manifests differ, as `key: x vs y`, or None."""
    for key in COMPATIBLE_KEYS:
        if key == "data_files":  # runs over different datasets share only some files
            common = set(a.get(key) or {}) & set(b.get(key) or {})
            changed = sorted(f for f in common if a[key][f] != b[key][f])
            if changed:
                return f"{key}: {changed[0]} changed"
        elif a.get(key) != b.get(key):
            return f"{key}: {_short(a.get(key))} vs {_short(b.get(key))}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
