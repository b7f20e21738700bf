"""Benchmark suites as data: load and validate the `eval/*.yaml` manifests (datasets, formats, tasks, metrics)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from affectreason.decoding import SamplingParams
from affectreason.errors import AffectReasonError
from affectreason.paths import suites_dir

TASKS = ("discrete", "sentiment", "ov", "emer", "choice", "multilabel", "joint", "reason")
# What an optional `--judge-endpoint` scores per dataset (`affectreason.judge`): MME-Emotion's step ratings,
# EmoBench-M's laughter-reasoning ratings.
JUDGES = ("mme_cot", "laughter")
MEANS = ("datasets", "samples")
RESERVED_NAMES = ("check", "merge", "run", "list")


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


@dataclass(frozen=True)
class Suite:
    """A named list of datasets, the prompt they are asked with, and published rows to compare against.
    `mean` is the plain mean of the datasets' main metrics, or `samples`: weighted by samples scored (a pooled
    score, as MME-Emotion's overall)."""

    name: str
    datasets: tuple[DatasetSpec, ...]
    prompt: str
    title: str = ""
    published: dict[str, dict[str, float]] = field(default_factory=dict)
    mean: str = "datasets"
    generation_kwargs: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def dataset(self, name: str) -> DatasetSpec:
        for spec in self.datasets:
            if spec.name == name:
                return spec
        raise AffectReasonError(
            _unknown("dataset", name, [d.name for d in self.datasets], f"suite {self.name}")
        )

    def select(self, names: list[str] | None) -> list[DatasetSpec]:
        """The datasets named (in suite order), or all of them."""
        if not names:
            return list(self.datasets)
        wanted = [self.dataset(n).name for n in names]
        return [d for d in self.datasets if d.name in wanted]


def _unknown(kind: str, value: str, choices: list[str], where: str) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f"; choose one of {', '.join(choices)}"
    return f"unknown {kind} '{value}' in {where}{hint}"


def suite_names() -> list[str]:
    """Names of the packaged suites (`eval/mer_unibench.yaml` is `mer-unibench`)."""
    return sorted(p.stem.replace("_", "-") for p in suites_dir().glob("*.yaml"))


def suite_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    packaged = suites_dir() / f"{str(name_or_path).replace('-', '_')}.yaml"
    if packaged.is_file():
        return packaged
    raise AffectReasonError(
        _unknown("suite", str(name_or_path), suite_names(), "the packaged suites or a YAML path")
    )


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else (str(value),)


def _dataset(raw: Any, where: str) -> DatasetSpec:
    from affectreason.bench.adapters import ADAPTERS

    if not isinstance(raw, dict):
        raise AffectReasonError(f"{where}: each dataset must be a mapping")
    known = [f.name for f in fields(DatasetSpec)]
    for key in raw:
        if key not in known:
            raise AffectReasonError(_unknown("key", str(key), known, where))
    for key in ("name", "folder", "format", "annotation", "task", "metric"):
        if raw.get(key) in (None, ""):
            raise AffectReasonError(f"{where}: dataset is missing '{key}'")
    where = f"{where} dataset {raw['name']}"
    if raw["task"] not in TASKS:
        raise AffectReasonError(_unknown("task", str(raw["task"]), list(TASKS), where))
    if raw["format"] not in ADAPTERS:
        raise AffectReasonError(_unknown("format", str(raw["format"]), sorted(ADAPTERS), where))
    subtitles = raw.get("subtitles")
    if subtitles is not None:
        if not isinstance(subtitles, dict) or "file" not in subtitles:
            raise AffectReasonError(f"{where}: 'subtitles' needs a 'file' (and a 'column')")
        subtitles = SubtitleSpec(file=str(subtitles["file"]), column=str(subtitles.get("column", "english")))
    label_space = raw.get("label_space")
    values = dict(raw)
    values.update(
        name=str(raw["name"]),
        annotation=_as_tuple(raw["annotation"]),
        video_dirs=_as_tuple(raw.get("video_dirs", ["video"])),
        subtitles=subtitles,
        label_space=None if label_space in (None, "open") else _as_tuple(label_space),
        intent_space=_as_tuple(raw["intent_space"]) if raw.get("intent_space") else None,
    )
    if values["task"] == "joint" and not (values["label_space"] and values["intent_space"]):
        raise AffectReasonError(f"{where}: a joint task needs a 'label_space' and an 'intent_space'")
    if values.get("judge") not in (None, *JUDGES):
        raise AffectReasonError(_unknown("judge", str(values["judge"]), list(JUDGES), where))
    if values.get("names_from") not in (None, "subtitles"):
        raise AffectReasonError(f"{where}: 'names_from' can only be 'subtitles'")
    if values.get("names_from") and subtitles is None:
        raise AffectReasonError(f"{where}: 'names_from: subtitles' needs a 'subtitles' file")
    return DatasetSpec(**values)


def load_suite(name_or_path: str | Path) -> Suite:
    """A packaged suite by name (`mer-unibench`, `ov-mer`, `emer`) or any suite YAML by path."""
    import yaml

    path = suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AffectReasonError(f"suite {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    where = f"suite {path.name}"
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), list) or not raw["datasets"]:
        raise AffectReasonError(f"{where}: expected a mapping with a non-empty 'datasets' list")
    known = [f.name for f in fields(Suite) if f.name != "path"]
    for key in raw:
        if key not in known:
            raise AffectReasonError(_unknown("key", str(key), known, where))
    datasets = tuple(_dataset(d, where) for d in raw["datasets"])
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise AffectReasonError(f"{where}: dataset names must be unique")
    name = str(raw.get("name") or path.stem.replace("_", "-"))
    if name in RESERVED_NAMES:
        raise AffectReasonError(f"{where}: '{name}' is a bench command, not a suite name")
    published = {
        str(model): {str(d): float(v) for d, v in (row or {}).items()}
        for model, row in (raw.get("published") or {}).items()
    }
    mean = str(raw.get("mean") or "datasets")
    if mean not in MEANS:
        raise AffectReasonError(_unknown("mean", mean, list(MEANS), where))
    generation = raw.get("generation_kwargs") or {}
    if not isinstance(generation, dict):
        raise AffectReasonError(f"{where}: 'generation_kwargs' must be a mapping")
    SamplingParams().updated(generation, f"{where} generation_kwargs")  # fails here, before any model loads
    return Suite(
        name=name,
        mean=mean,
        title=str(raw.get("title") or name),
        prompt=str(raw.get("prompt") or "describe"),
        datasets=datasets,
        published=published,
        generation_kwargs=dict(generation),
        path=str(path),
    )
