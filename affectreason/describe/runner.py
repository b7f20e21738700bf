"""The describe runner: clips to requests, one engine call per batch, records handed on as soon as they exist;
long clips window by window; bad files collected as failures, never stopping the run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectreason.describe.inputs import media_ids, prefetch
from affectreason.describe.options import DescribeOptions
from affectreason.describe.records import (
    TIMELINE_KEYS,
    record_from_rationale,
    record_from_text,
    summarise_timeline,
)
from affectreason.engines.base import Engine
from affectreason.errors import AffectReasonError
from affectreason.media import Clip, load_clip, probe_duration, read_transcript
from affectreason.prompts import Prompt, load_prompt
from affectreason.rationale import Rationale
from affectreason.request import ALL_MODALITIES, Request

log = logging.getLogger("affectreason")


def describe_clips(
    clips: list[Clip],
    engine: Engine,
    options: DescribeOptions,
    prompt: Prompt | None = None,
    modalities: frozenset[str] = ALL_MODALITIES,
) -> list[dict[str, Any]]:
    """Describe already-decoded clips in one engine call; one record per clip, in order."""
    prompt = prompt or load_prompt(options.prompt)
    requests = [Request(clip=c, prompt=prompt.text, modalities=modalities) for c in clips]
    texts = engine.generate(requests, options.sampling()) if requests else []
    return [record_from_text(c, t, engine, options, prompt) for c, t in zip(clips, texts)]


def load_for_describe(
    path: str | Path, options: DescribeOptions, start=None, end=None, clip_id: str | None = None
) -> Clip:
    """Decode a clip with the options' sampling and attach its transcript (and its id, when given)."""
    clip = load_clip(
        path,
        frames=None if options.fps else options.frames,
        fps=options.fps,
        max_frames=options.max_frames,
        max_pixels=options.max_pixels,
        start=start,
        end=end,
        transcript=read_transcript(options.subtitle),
    )
    clip.name = clip_id
    return clip


def audio_window(engine: Engine) -> float | None:
    """Seconds of audio the engine's backbone hears (None when unlimited or unknown)."""
    backbone = getattr(engine, "backbone", None)
    return getattr(backbone, "audio_window_seconds", None)


def long_clip_warning(clip: Clip, engine: Engine) -> str | None:
    """A one-line warning when the backbone will not hear the whole clip."""
    window = audio_window(engine)
    if window is None or not clip.has_audio or clip.duration <= window + 0.05:
        return None
    dropped = clip.duration - window
    return (
        f"warning: {Path(clip.source).name} is {clip.duration:.1f} s long but the model hears only the first "
        f"{window:.0f} s of audio ({dropped:.1f} s dropped); pass --segment {window:.0f} to describe it window by window"
    )


def segment_window_warning(windows: list[Clip], engine: Engine, segment: float) -> str | None:
    """A one-line warning when `--segment` windows are longer than the audio the backbone hears."""
    window = audio_window(engine)
    longest = max((c.duration for c in windows if c.has_audio), default=0.0)
    if window is None or longest <= window + 0.05:
        return None
    name = Path(windows[0].source).name
    return (
        f"warning: --segment {segment:g} is longer than the {window:.0f} s of audio the model hears: "
        f"{longest - window:.1f} s of each {name} window's audio is dropped; pass --segment {window:.0f} or less"
    )


def _windows(duration: float, size: float) -> list[tuple[float, float]]:
    if size <= 0:
        raise AffectReasonError(f"--segment must be a positive number of seconds, got {size}")
    edges, start = [], 0.0
    while start < duration - 1e-6:
        edges.append((start, min(duration, start + size)))
        start += size
    return edges or [(0.0, duration)]


def describe_segmented(
    path: str | Path,
    engine: Engine,
    options: DescribeOptions,
    clip_id: str | None = None,
    on_warning: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Describe a long clip window by window: a timeline of rationales plus the overall summary.

    `progress(done, total)` is called after each batch of windows.
    """
    prompt = load_prompt(options.prompt)
    duration = probe_duration(path)
    windows = _windows(duration, float(options.segment or 0))
    clips = [load_for_describe(path, options, start=s, end=e, clip_id=clip_id) for s, e in windows]
    warning = segment_window_warning(clips, engine, float(options.segment or 0))
    if warning and on_warning:
        on_warning(warning)
    records: list[dict[str, Any]] = []
    for i in range(0, len(clips), options.batch_size):
        records.extend(describe_clips(clips[i : i + options.batch_size], engine, options, prompt))
        if progress:
            progress(len(records), len(clips))
    rationales = [Rationale.from_dict(r) for r in records]
    whole = Clip(
        frames=None,
        frame_times=clips[0].frame_times[:0],
        audio=None,
        duration=duration,
        source=str(path),
        transcript=clips[0].transcript,
        name=clip_id,
    )
    record = record_from_rationale(whole, summarise_timeline(rationales), engine, options, prompt)
    record["timeline"] = [
        {"start": round(s, 3), "end": round(e, 3), **{k: r[k] for k in TIMELINE_KEYS}}
        for (s, e), r in zip(windows, records)
    ]
    return record


@dataclass
class Failure:
    source: str
    error: str


def describe_paths(
    inputs: Iterable[str | Path],
    engine: Engine,
    options: DescribeOptions,
    on_record: Callable[[dict[str, Any]], None],
    on_warning: Callable[[str], None] = lambda message: log.warning(message),
    progress: Callable[[int], None] | None = None,
    describe_batch: Callable[..., list[dict[str, Any]]] = describe_clips,
    window_progress: Callable[[int, int], None] | None = None,
) -> list[Failure]:
    """Describe every clip, handing each record to `on_record` as soon as its batch is done.

    Bad files are collected as failures instead of stopping the run, so nothing computed is lost.
    `progress(n)` counts finished clips; `window_progress(done, total)` the windows of a `--segment` clip.
    """
    items = media_ids(inputs)
    prompt = load_prompt(options.prompt)
    failures: list[Failure] = []
    pending: list[Clip] = []

    def advance(n: int) -> None:
        if progress:
            progress(n)

    def flush() -> None:
        for record in describe_batch(pending, engine, options, prompt):
            on_record(record)
        advance(len(pending))
        pending.clear()

    if options.segment:
        for path, clip_id in items:
            try:
                on_record(describe_segmented(path, engine, options, clip_id, on_warning, window_progress))
            except AffectReasonError as exc:
                failures.append(Failure(str(path), str(exc)))
            advance(1)
        return failures

    def load(item: tuple[Path, str]) -> Clip:
        return load_for_describe(item[0], options, clip_id=item[1])

    for (path, _), loaded in prefetch(items, load):
        if isinstance(loaded, AffectReasonError):
            failures.append(Failure(str(path), str(loaded)))
            advance(1)
            continue
        warning = long_clip_warning(loaded, engine)
        if warning:
            on_warning(warning)
        pending.append(loaded)
        if len(pending) >= options.batch_size:
            flush()
    if pending:
        flush()
    return failures
