"""EmoBench-M annotation files, as its evaluation scripts read them: a JSON list of `{"video", "conversations":
[{"value": question}, {"value": answer}]}`, the video path relative to the data root."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectreason.bench.mme_emotion import read_json_list
from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from affectreason.bench.suites import DatasetSpec


def _turns(item: dict[str, Any], path: Path, number: int) -> tuple[str, str]:
    turns = item.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, dict) for t in turns[:2]):
        raise AffectReasonError(f"{path.name} item {number} has no question and answer in 'conversations'")
    question, answer = (t.get("value") for t in turns[:2])
    if not isinstance(question, str) or not isinstance(answer, str) or not answer.strip():
        raise AffectReasonError(f"{path.name} item {number}: 'conversations' values must be text")
    return question.replace("<video>", "").strip(), answer.strip()


def read_conversations(spec: DatasetSpec, path: Path) -> dict[str, dict[str, Any]]:
    """`video` -> reference in file order. Classification scenarios (`label_space` set): `{"label", "label_set",
    "question"}`, the label lowercased as the reference does; reasoning scenarios: `{"description", "question"}`;
    joint scenarios (MC-EIU): `{"label", "intent", "label_set", "intent_set", "question"}`, both read from the
    answer as the reference does, and an item naming no emotion or no intent left out, as there."""
    from affectreason.metrics.recognition import first_named

    refs: dict[str, dict[str, Any]] = {}
    for number, item in enumerate(read_json_list(path), 1):
        video = item.get("video")
        if not isinstance(video, str) or not video.strip() or "\x00" in video:
            raise AffectReasonError(f"{path.name} item {number} has no 'video' path")
        question, answer = _turns(item, path, number)
        if spec.task == "joint":
            emotions, intents = spec.label_space or (), spec.intent_space or ()
            emotion, intent = first_named(answer, emotions), first_named(answer, intents)
            if emotion is None or intent is None:
                continue
            ref: dict[str, Any] = {
                "label": emotion, "intent": intent, "label_set": list(emotions), "intent_set": list(intents)
            }  # fmt: skip
        elif spec.label_space:
            ref = {"label": answer.lower(), "label_set": list(spec.label_space)}
        else:
            ref = {"description": answer}
        refs.setdefault(video.strip(), {**ref, "question": question, "_video": video.strip()})
    return refs
