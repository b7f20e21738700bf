"""Synthetic mini data roots in the released layout of a suite (tests, the overhead benchmark, dry runs)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from affectreason.bench.suites import DatasetSpec, Suite

# MELD and IEMOCAP release `emo` as an index into the label space; the MER sets release the label itself.
_INDEXED_LABELS = ("meld", "iemocap")
# These releases ship `.avi` videos; the rest `.mp4`.
_AVI_VIDEOS = ("iemocap", "emer_v1")
_OPEN_LABELS = (
    ["happy", "excited"],
    ["sad", "disappointed"],
    ["angry"],
    [],
    ["worried", "nervous"],
    ["surprised"],
)
_SENTENCES = (
    "I can't believe it worked!",
    "Leave me alone.",
    "Well, that is fine I guess.",
    "Why would you do that?",
)


def _names(spec: DatasetSpec, n: int) -> list[str]:
    return [f"{spec.name_prefix or ''}{spec.name}_{i:03d}" for i in range(n)]


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _open_label(i: int) -> str:
    labels = _OPEN_LABELS[i % len(_OPEN_LABELS)]
    return str(labels) if labels else ""


def _first_label(i: int) -> str:
    return (_OPEN_LABELS[i % len(_OPEN_LABELS)] or ["calm"])[0]


# Formats whose annotation gives each video's relative path (the sample name is that path).
_PATH_FORMATS = ("mme_json", "conversations_json")
_CLOSED_SET = ("neutral", "happy", "sad", "angry")


def _path_names(spec: DatasetSpec, n: int) -> list[str]:
    return [f"{spec.name}/video/{spec.name}_{i:03d}.mp4" for i in range(n)]


def _path_items(spec: DatasetSpec, names: list[str]) -> list[dict]:
    options = list(spec.label_space or _CLOSED_SET)
    if spec.format == "mme_json":
        gold = (
            [",".join(options[i % len(options) : i % len(options) + 2]) for i in range(len(names))]
            if spec.task == "multilabel"
            else [options[i % len(options)] for i in range(len(names))]
        )
        return [{"video_id": v, "label": g, "label_set": options} for v, g in zip(names, gold, strict=True)]
    intents = list(spec.intent_space or ("neutral",))
    answers = [
        f"The audience laughed because of {_SENTENCES[i % 4]!r}"
        if spec.task == "reason"
        else f"{{'emotion label': '{options[i % len(options)]}', 'intent label': '{intents[i % len(intents)]}'}}"
        if spec.task == "joint"
        else options[i % len(options)]
        for i in range(len(names))
    ]
    question = "<video>\nWhich label describes the person: " + ", ".join(options) + "?"
    return [
        {"video": v, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": a}]}
        for v, a in zip(names, answers, strict=True)
    ]


def _write_annotation(spec: DatasetSpec, folder: Path, names: list[str]) -> None:
    path = folder / spec.annotation[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.format == "npz":
        corpus: dict[str, dict] = {}
        for i, name in enumerate(names):
            if spec.label_field == "val":
                corpus[name] = {"emo": 0, "val": round(float(np.sin(i * 1.7 + 0.3)) * 2.5, 2)}
            else:
                index = i % len(spec.label_space or ("neutral",))
                label = index if spec.name in _INDEXED_LABELS else (spec.label_space or ("neutral",))[index]
                corpus[name] = {"emo": label, "val": 0.0}
        if spec.name_prefix:  # a sample outside the test prefix, which the adapter must leave out
            corpus["Ses01_other_000"] = {"emo": 0, "val": 0.0}
        splits = {spec.split or "test_corpus": corpus, "train_corpus": {"train_000": {"emo": 0, "val": 0.0}}}
        np.savez(path, **{k: np.array(v, dtype=object) for k, v in splits.items()})
    elif spec.format == "openset_csv":
        _write_csv(path, ["name", "openset"], [[n, _open_label(i)] for i, n in enumerate(names)])
    elif spec.format == "emer_csv":
        rows = [
            [
                n,
                _open_label(i) or "['neutral']",
                _SENTENCES[i % 4],
                f"The person frowns and speaks softly, so {n} seems {_first_label(i)}.",
            ]
            for i, n in enumerate(names)
        ]
        _write_csv(path, ["names", "emotions", "subtitles", "reasons"], rows)
    elif spec.format == "reason_csv":
        rows = [
            [n, f"A raised voice and a frown suggest the person feels {_first_label(i)}."]
            for i, n in enumerate(names)
        ]
        _write_csv(path, ["name", "reason"], rows)
    elif spec.format in _PATH_FORMATS:
        path.write_text(json.dumps(_path_items(spec, names), indent=1), encoding="utf-8")
    else:
        raise ValueError(f"no synthetic writer for format {spec.format!r}")
    if spec.labels_file:
        _write_csv(
            folder / spec.labels_file, ["name", "openset"], [[n, _open_label(i)] for i, n in enumerate(names)]
        )


def write_dataset(spec: DatasetSpec, root: Path, n: int, clips: dict[str, list[Path]]) -> list[str]:
    """Write one dataset's annotation, subtitles and `n` videos (copies of `clips[ext]`) under `root`."""
    folder = root / spec.folder
    names = _path_names(spec, n) if spec.format in _PATH_FORMATS else _names(spec, n)
    _write_annotation(spec, folder, names)
    if spec.subtitles:
        column = spec.subtitles.column
        _write_csv(
            folder / spec.subtitles.file,
            ["name", column],
            [[n_, _SENTENCES[i % 4]] for i, n_ in enumerate(names)],
        )
    videos = folder / spec.video_dirs[0]
    videos.mkdir(parents=True, exist_ok=True)
    ext = ".avi" if spec.name in _AVI_VIDEOS else ".mp4"
    for i, name in enumerate(names):
        target = videos / name if spec.format in _PATH_FORMATS else videos / f"{name}{ext}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clips[ext][i % len(clips[ext])], target)
    return names


def write_data_root(
    suite: Suite, root: str | Path, n: int = 3, datasets: list[str] | None = None, duration: float = 1.0
) -> Path:
    """A data root for `suite` with `n` samples per dataset: real PyAV clips, labels in the released formats."""
    from affectreason.synth import EMOTION_FAMILIES, write_emotion_clip

    root = Path(root)
    pool = root / ".clips"
    pool.mkdir(parents=True, exist_ok=True)
    clips: dict[str, list[Path]] = {".mp4": [], ".avi": []}
    for i, family in enumerate(EMOTION_FAMILIES[: max(1, min(n, len(EMOTION_FAMILIES)))]):
        for ext, paths in clips.items():
            paths.append(write_emotion_clip(pool / f"{family}{ext}", family, seed=i, duration=duration))
    for spec in suite.select(datasets):
        write_dataset(spec, root, n, clips)
    shutil.rmtree(pool)
    return root
