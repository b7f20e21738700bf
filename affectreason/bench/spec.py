"""One benchmark dataset as data (`DatasetSpec`): the type suites are made of and data adapters read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubtitleSpec:
    """A subtitle CSV inside the dataset folder and the column holding the transcript."""

    file: str
    column: str = "english"


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset: where its files are, how to read them, and how it is scored.

    `folder` is relative to the data root; `annotation`, `labels_file`, `video_dirs` and the subtitle file are
    relative to `folder`. `annotation` may list alternatives (the first that exists is used). `metric` is a
    dotted path into the `score` library's result for `task` (e.g. `hit_rate`, `ew.level1.fscore`).
    When the annotation gives each video's path (`mme_json`, `conversations_json`), the video is that path under
    the first of `video_dirs` holding it. `clues` is a glob (under `folder`) of clue files whose text goes into
    each sample's reference as `clue`; `judge` names what an optional judge endpoint scores. A `joint` task
    (emotion and intent) takes its intents from `intent_space`. `prompt` replaces the suite's prompt here.
    """

    name: str
    folder: str
    format: str
    annotation: tuple[str, ...]
    task: str
    metric: str
    title: str = ""
    video_dirs: tuple[str, ...] = ("video",)
    subtitles: SubtitleSpec | None = None
    split: str | None = None
    name_prefix: str | None = None
    label_field: str = "emo"
    label_space: tuple[str, ...] | None = None
    names_from: str | None = None
    labels_file: str | None = None
    clues: str | None = None
    judge: str | None = None
    intent_space: tuple[str, ...] | None = None
    prompt: str | None = None

    @property
    def display(self) -> str:
        return self.title or self.name
