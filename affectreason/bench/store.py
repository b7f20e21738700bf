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
LOCK = ".lock"

Key = tuple[str, str]


def key_of(record: dict[str, Any]) -> Key:
    return str(record["dataset"]), str(record["id"])


def failed(record: dict[str, Any]) -> bool:
    """A record written for a clip that could not be described (decode error, engine failure)."""
    return bool(record.get("error"))


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
        for number, raw in enumerate(data.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                key = key_of(record) if isinstance(record, dict) else None
            except UnicodeDecodeError:
                raise AffectReasonError(f"{self.path} line {number} is not valid UTF-8") from None
            except (ValueError, KeyError, TypeError, RecursionError):
                key = None
            if key is None:
                raise AffectReasonError(
                    f"{self.path} line {number} is not a prediction record (a JSON object with dataset and id)"
                )
            if key not in self.records or failed(self.records[key]):  # a retried clip replaces its failure
                self.records[key] = record
        return self.records

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records whose key is new, in one write, and make it durable before returning."""
        fresh = []
        for record in records:
            key = key_of(record)
            if key not in self.records or failed(self.records[key]):
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
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise AffectReasonError(f"{path} is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise AffectReasonError(f"{path} is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise AffectReasonError(f"{path} is not a run manifest (a JSON object)")
    return manifest


class RunLock:
    """An exclusive lock on a run folder for one process (released by the OS if the process dies)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise AffectReasonError(
                f"another bench process (pid {owner}) is writing to {self.path.parent}; wait for it or use another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


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
    "model_fingerprint",
    "adapter_fingerprint",
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
