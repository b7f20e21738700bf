"""The describe pipeline: engines by name, clips to requests, model text to rationale records, long-clip windows."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from affectreason.decoding import SamplingParams
from affectreason.engines.base import ALL_MODALITIES, Engine, Request
from affectreason.errors import AffectReasonError
from affectreason.media import TRANSCRIPT_SUFFIXES, Clip, load_clip, probe_duration
from affectreason.prompts import Prompt, load_prompt
from affectreason.rationale import FORMAT_VERSION, Rationale, parse_rationale

log = logging.getLogger("affectreason")

ENGINES = ("hf", "vllm", "openai")


@dataclass
class DescribeOptions:
    """How clips are sampled and decoded, and which prompt is used; checked when made (before any model loads)."""

    frames: int | None = 16
    fps: float | None = None
    max_frames: int = 64
    max_pixels: int = 360 * 640
    segment: float | None = None
    subtitle: str | None = None
    prompt: str = "describe"
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    seed: int | None = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        checks = (
            ("frames", self.frames is None or self.frames >= 1, "at least 1"),
            ("fps", self.fps is None or self.fps > 0, "above 0"),
            ("max-frames", self.max_frames >= 1, "at least 1"),
            ("max-pixels", self.max_pixels >= 1, "at least 1"),
            ("segment", self.segment is None or self.segment > 0, "a positive number of seconds"),
            ("batch-size", self.batch_size >= 1, "at least 1"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise AffectReasonError(
                    f"--{name} must be {expected}, got {getattr(self, name.replace('-', '_'))}"
                )
        check_subtitle(self.subtitle)
        self.sampling()

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            **{f.name: getattr(self, f.name) for f in fields(SamplingParams) if hasattr(self, f.name)}
        )

    def decoding(self) -> dict[str, Any]:
        """The decoding parameters recorded with every prediction."""
        return self.sampling().record()

    def with_decoding(self, settings: dict[str, Any], where: str = "generation_kwargs") -> DescribeOptions:
        """These options with decoding `settings` applied (a suite's `generation_kwargs`, or explicit flags)."""
        updated = asdict(self.sampling().updated(settings, where))
        return replace(self, **{k: v for k, v in updated.items() if hasattr(self, k)})


def check_subtitle(value: str | None) -> None:
    """A `--subtitle` value that names a file (a transcript suffix or a folder in it) must exist; otherwise
    the path itself would silently become the transcript."""
    if value is None:
        return
    path = Path(value)
    separator = any(sep in value for sep in ("/", "\\")) and not any(c.isspace() for c in value)
    looks_like_path = path.suffix.lower() in TRANSCRIPT_SUFFIXES or separator
    if looks_like_path and "\n" not in value and len(value) < 4096 and not path.is_file():
        raise AffectReasonError(
            f"subtitle file not found: '{value}' (pass the transcript text itself, or an existing file)"
        )


def create_engine(
    engine: str = "hf",
    *,
    model: str | None = None,
    adapter: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    dtype: str = "auto",
    quantization: str | None = None,
    batch_size: int = 4,
    device: str | None = None,
    trust_remote_code: bool = False,
    **engine_kwargs: Any,
) -> Engine:
    """Build an engine by name; an `endpoint` always means the OpenAI-compatible client engine."""
    if endpoint:
        engine = "openai"
    if engine in ("hf", "vllm") and adapter and not model:  # the base the adapter was trained on
        from affectreason.train.merge import adapter_base

        model = adapter_base(adapter)
    if engine == "hf":
        from affectreason.backbones.base import DEFAULT_MODEL, load_backbone
        from affectreason.engines.hf import HFEngine

        backbone = load_backbone(
            model or DEFAULT_MODEL,
            adapter=adapter,
            dtype=dtype,
            quantization=quantization,
            device=device,
            trust_remote_code=trust_remote_code,
        )
        return HFEngine(backbone, batch_size=batch_size)
    if engine == "vllm":
        from affectreason.backbones.base import DEFAULT_MODEL
        from affectreason.engines.vllm import VLLMEngine

        return VLLMEngine(model or DEFAULT_MODEL, adapter=adapter, **engine_kwargs)
    if engine == "openai":
        if not endpoint:
            raise AffectReasonError("the openai engine needs --endpoint URL")
        from affectreason.engines.openai import OpenAIEngine

        return OpenAIEngine(endpoint, model=model, adapter=adapter, api_key=api_key, **engine_kwargs)
    raise AffectReasonError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")


def audio_window(engine: Engine) -> float | None:
    """Seconds of audio the engine's backbone hears (None when unlimited or unknown)."""
    backbone = getattr(engine, "backbone", None)
    return getattr(backbone, "audio_window_seconds", None)


def _families(emotions: list[str]) -> list[str | None]:
    from affectreason.taxonomy import family_of

    return [family_of(e) for e in emotions]


def record_from_text(
    clip: Clip, text: str, engine: Engine, options: DescribeOptions, prompt: Prompt
) -> dict[str, Any]:
    """One prediction record: the parsed rationale plus everything needed to reproduce it."""
    rationale = parse_rationale(text)
    return record_from_rationale(clip, rationale, engine, options, prompt)


def record_from_rationale(
    clip: Clip, rationale: Rationale, engine: Engine, options: DescribeOptions, prompt: Prompt
) -> dict[str, Any]:
    record: dict[str, Any] = {"id": clip.id, "source": clip.source}
    record.update(rationale.to_dict())
    record["transcript"] = clip.transcript
    record["families"] = _families(rationale.emotions)
    record.update(
        model=getattr(engine, "model_id", None),
        adapter=getattr(engine, "adapter", None)
        or getattr(getattr(engine, "backbone", None), "adapter", None),
        engine=getattr(engine, "name", None),
        prompt_version=prompt.id,
        format_version=FORMAT_VERSION,
        decoding=options.decoding(),
    )
    return record


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
    from affectreason.media import read_transcript

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


def _windows(duration: float, size: float) -> list[tuple[float, float]]:
    if size <= 0:
        raise AffectReasonError(f"--segment must be a positive number of seconds, got {size}")
    edges, start = [], 0.0
    while start < duration - 1e-6:
        edges.append((start, min(duration, start + size)))
        start += size
    return edges or [(0.0, duration)]


def summarise_timeline(windows: list[Rationale]) -> Rationale:
    """Deterministic summary of per-window rationales: emotions ranked by how many windows name them
    (ties by first appearance and salience), cues pooled without repeats, affect averaged."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for rationale in windows:
        for rank, emotion in enumerate(rationale.emotions):
            key = emotion.lower()
            counts[key] += 1
            first_seen.setdefault(key, len(first_seen) * 100 + rank)
    emotions = sorted(counts, key=lambda e: (-counts[e], first_seen[e]))

    def pooled(attr: str) -> list[str]:
        seen: dict[str, None] = {}
        for rationale in windows:
            for cue in getattr(rationale, attr):
                seen.setdefault(cue, None)
        return list(seen)

    def mean(attr: str) -> float | None:
        values = [getattr(r, attr) for r in windows if getattr(r, attr) is not None]
        return round(sum(values) / len(values), 4) if values else None

    reasoning = " ".join(f"[{i + 1}] {r.reasoning}" for i, r in enumerate(windows) if r.reasoning)
    return Rationale(
        emotions=emotions,
        visual_cues=pooled("visual_cues"),
        acoustic_cues=pooled("acoustic_cues"),
        lexical_cues=pooled("lexical_cues"),
        reasoning=reasoning,
        valence=mean("valence"),
        arousal=mean("arousal"),
        confidence=mean("confidence"),
        raw="",
        parse_ok=bool(windows) and all(r.parse_ok for r in windows),
    )


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
        {"start": round(s, 3), "end": round(e, 3), **{k: r[k] for k in _TIMELINE_KEYS}}
        for (s, e), r in zip(windows, records)
    ]
    return record


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


_TIMELINE_KEYS = (
    "emotions",
    "families",
    "visual_cues",
    "acoustic_cues",
    "lexical_cues",
    "reasoning",
    "valence",
    "arousal",
    "confidence",
    "parse_ok",
    "raw",
)


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


def format_record_text(record: dict[str, Any]) -> str:
    """The terminal rendering of one record (with emotion families and, for long clips, the timeline)."""
    from affectreason.rationale import render_text

    rationale = Rationale.from_dict(record)
    families = record.get("families") or []
    labelled = [f"{e} ({f})" if f else e for e, f in zip(rationale.emotions, families)]
    lines = [render_text(rationale, title=f"{record['id']}  [{record['source']}]")]
    if labelled:
        lines.append(f"  families  {', '.join(labelled)}")
    for window in record.get("timeline", []):
        emotions = ", ".join(window["emotions"]) or "-"
        lines.append(f"  {window['start']:7.1f}-{window['end']:<7.1f} {emotions}")
    if "attribution" in record:
        from affectreason.attribution_report import attribution_lines

        lines.extend(attribution_lines(record))
    return "\n".join(lines)


@dataclass
class Failure:
    source: str
    error: str


def iter_media_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (sorted, media files only) into the list of clips to describe."""
    return [path for path, _ in media_ids(inputs)]


def media_ids(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Each clip to describe with its id: the path relative to the input folder it was found in (a file given
    by name: its stem), without the suffix. Ids that would still clash (`a/clip.mp4` and `b/clip.mp4` given as
    files) become the paths relative to the clashing files' common folder, so every id is unique and stable."""
    from affectreason.media import is_media_file

    found: dict[Path, str] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_media_file(p))
            if not files:
                raise AffectReasonError(f"no media files found in folder '{path}'")
            for file in files:
                found.setdefault(file, file.relative_to(path).with_suffix("").as_posix())
        else:
            found.setdefault(path, path.stem)
    by_id: dict[str, list[Path]] = {}
    for path, clip_id in found.items():
        by_id.setdefault(clip_id, []).append(path)
    for clashing in (paths for paths in by_id.values() if len(paths) > 1):
        absolute = [p.resolve() for p in clashing]
        if len({a.with_suffix("") for a in absolute}) == 1:  # clip.mp4 beside clip.wav: keep the suffix
            found.update({p: found[p] + p.suffix for p in clashing})
            continue
        common = Path(os.path.commonpath(absolute))
        relative = [a.relative_to(common) for a in absolute]
        stems = [r.with_suffix("").as_posix() for r in relative]
        unique = len(set(stems)) == len(stems)
        found.update({p: stem if unique else r.as_posix() for p, r, stem in zip(clashing, relative, stems)})
    return list(found.items())


def prefetch(items: list[Any], load: Callable[[Any], Any], ahead: int = 4) -> Iterator[tuple[Any, Any]]:
    """Yield `(item, load(item) or exception)` in order, decoding up to `ahead` items in a background thread
    while the caller generates, so media decoding overlaps with the model."""

    def safe(item: Any) -> Any:
        try:
            return load(item)
        except AffectReasonError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [pool.submit(safe, item) for item in items[:ahead]]
        for index, item in enumerate(items):
            if index + ahead < len(items):
                futures.append(pool.submit(safe, items[index + ahead]))
            yield item, futures[index].result()


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
