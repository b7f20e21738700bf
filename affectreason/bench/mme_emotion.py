"""MME-Emotion question files (`<TASK>/question/<TASK_>.json`): a JSON list of `{"video_id", "label",
"label_set"}`, each video found by its `video_id` path under the data root; and its audio-clue files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from affectreason.bench.suites import DatasetSpec


def read_json_list(path: Path) -> list[dict[str, Any]]:
    """A released JSON file holding a list of objects; one-line errors for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AffectReasonError(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise AffectReasonError(f"{path.name} is not a JSON list of objects")
    return data


def _text(item: dict[str, Any], key: str, path: Path, number: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise AffectReasonError(f"{path.name} item {number} has no text '{key}'")
    return value.strip()


def read_questions(spec: DatasetSpec, path: Path) -> dict[str, dict[str, Any]]:
    """`video_id` -> `{"label", "label_set", "_video"}` in file order; a repeated `video_id` keeps its first item."""
    refs: dict[str, dict[str, Any]] = {}
    for number, item in enumerate(read_json_list(path), 1):
        video_id = _text(item, "video_id", path, number)
        label = _text(item, "label", path, number)
        options = item.get("label_set")
        if options is None:
            options = list(spec.label_space or ())
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options) or not options:
            raise AffectReasonError(f"{path.name} item {number} has no 'label_set' list")
        refs.setdefault(video_id, {"label": label, "label_set": options, "_video": video_id})
    return refs


def read_clues(paths: list[Path]) -> dict[str, str]:
    """`video_id` -> audio clue text from the released `audio_clue/*.json` files (first file wins)."""
    clues: dict[str, str] = {}
    for path in paths:
        for item in read_json_list(path):
            key, clue = item.get("video_id"), item.get("audio_clue")
            if isinstance(key, str) and isinstance(clue, str):
                clues.setdefault(key.strip(), clue)
    return clues
