"""The bench runner: check the data, load the model once, describe every pending sample in fixed batches with
decoding overlapped, append predictions per batch, then score and report. Also `merge` for shard folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from affectreason.bench.adapters import DatasetScan, Sample, check_data
from affectreason.bench.manifest import build_manifest
from affectreason.bench.options import BenchOptions, select_samples
from affectreason.bench.store import (
    PredictionStore,
    RunLock,
    failed,
    incompatibility,
    read_manifest,
    write_json,
)
from affectreason.bench.suites import Suite, load_suite
from affectreason.describe import describe_clips, load_for_describe, prefetch
from affectreason.engines.base import Engine
from affectreason.errors import AffectReasonError
from affectreason.judge import Judge, judge_records
from affectreason.metrics.ov import check_protocol
from affectreason.prompts import Prompt, load_prompt
from affectreason.verify import verify_clip_record

# `describe_batch(clips, engine, options, prompt) -> records`: the per-batch step. Per-sample variants plug
# in here, e.g. `run_bench(..., describe_batch=affectreason.attribution.attribute_clips)` adds modality
# ablations to every record (then `corpus_attribution(records, score=results.dataset_scorer(suite))`).
DescribeBatch = Callable[..., list[dict[str, Any]]]
MAX_ATTEMPTS = 3  # a clip that failed this often is not retried on resume unless --retry-failed


def _prepare_out(out: Path, manifest: dict[str, Any], resume: bool) -> PredictionStore:
    store = PredictionStore(out)
    previous = read_manifest(out)
    if not resume:
        store.clear()
    elif previous is None and store.path.is_file() and store.path.stat().st_size:
        raise AffectReasonError(
            f"{out} holds predictions but no run.json, so nothing says which model made them;"
            " use --no-resume to start over or another --out"
        )
    elif previous is not None:
        differs = incompatibility(previous, manifest)
        if differs:
            raise AffectReasonError(
                f"{out} holds a run with other settings ({differs}); use another --out or --no-resume to start over"
            )
    write_json(out / "run.json", manifest)
    store.load()
    return store


def _batches(
    selected: list[tuple[int, Sample]], batch_size: int, done: set[tuple[str, str]]
) -> Iterator[list[Sample]]:
    """Fixed chunks of the selection by position (a resumed run sees the same batches), minus what is done."""
    for start in range(0, len(selected), batch_size):
        todo = [s for _, s in selected[start : start + batch_size] if (s.dataset, s.id) not in done]
        if todo:
            yield todo


def _error_record(
    sample: Sample, error: str, prompt: Prompt, options: BenchOptions, attempts: int
) -> dict[str, Any]:
    return {
        "emotions": [],
        "parse_ok": False,
        "raw": "",
        "error": error,
        "attempts": attempts,
        "source": str(sample.video or ""),
        "model": options.model,
        "adapter": options.adapter,
        "prompt_version": prompt.id,
        "decoding": options.describe.decoding(),
    }


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


# Reference fields a prompt template may name (`{label_set}`, `{question}`); never the answer itself.
PROMPT_FIELDS = ("label_set", "intent_set", "question")


def prompt_values(reference: dict[str, Any]) -> dict[str, str]:
    """A sample's values for its prompt's placeholders: the options as a comma list, the released question."""
    values = {}
    for key in PROMPT_FIELDS:
        if key in reference:
            value = reference[key]
            values[key] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return values


def describe_samples(
    describe_batch: DescribeBatch,
    pairs: list[tuple[Sample, Any]],
    engine: Engine,
    options: BenchOptions,
    prompt: Prompt,
) -> list[dict[str, Any]]:
    """One record per (sample, clip): a prompt with placeholders is filled per sample, and the samples that
    share the filled text go to the model together."""
    clips = [c for _, c in pairs]
    if not prompt.fields:
        return describe_batch(clips, engine, options.describe, prompt)
    filled = [prompt.fill(prompt_values(s.reference)) for s, _ in pairs]
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(filled):
        groups.setdefault(p.text, []).append(i)
    out: list[dict[str, Any]] = [{} for _ in pairs]
    for members in groups.values():
        chunk = describe_batch([clips[i] for i in members], engine, options.describe, filled[members[0]])
        for i, record in zip(members, chunk, strict=True):
            out[i] = record
    return out


def _batch_records(
    loaded: list[tuple[Sample, Any]],
    by_id: dict[str, dict[str, Any]],
    store: PredictionStore,
    prompt: Prompt,
    options: BenchOptions,
) -> list[dict[str, Any]]:
    """One record per sample of a batch: its description (cues verified against the decoded clip), or an error
    record counting the attempt when the clip did not decode."""
    out = []
    for sample, clip in loaded:
        before = store.records.get((sample.dataset, sample.id), {}).get("attempts", 0)
        record = by_id.get(sample.id) or _error_record(sample, str(clip), prompt, options, before + 1)
        if sample.id in by_id:  # the cues checked against the decoded clip: the faithfulness column
            record["verification"] = verify_clip_record(record, clip)
        record.update(dataset=sample.dataset, id=sample.id, reference=sample.reference)
        out.append(record)
    return out


def generate_pending(
    plan: list[tuple[DatasetScan, list[tuple[int, Sample]]]],
    store: PredictionStore,
    engine_factory: Callable[[], Engine],
    options: BenchOptions,
    prompt: Prompt,
    describe_batch: DescribeBatch = describe_clips,
) -> int:
    """Describe every sample not yet in the store; one durable append per batch. Returns how many were new."""
    size = max(1, options.describe.batch_size)
    done = {
        key
        for key, record in store.records.items()
        if not failed(record) or (not options.retry_failed and record.get("attempts", 1) >= MAX_ATTEMPTS)
    }
    batches = [(scan.spec.name, b) for scan, selected in plan for b in _batches(selected, size, done)]
    if not batches:
        return 0
    kinds = {scan.spec.name: scan.spec.judge for scan, _ in plan}
    judge = Judge(options.judge) if options.judge and any(kinds.values()) else None  # unreachable: fail first
    engine = engine_factory()
    prompts = {
        scan.spec.name: load_prompt(scan.spec.prompt) if scan.spec.prompt else prompt for scan, _ in plan
    }
    load_options = replace(options.describe, subtitle=None)

    def load(sample: Sample):
        clip = load_for_describe(sample.video, load_options)
        clip.transcript = sample.transcript
        return clip

    flat = [s for _, batch in batches for s in batch]
    decoded = prefetch(flat, load, ahead=2 * size)  # the next batch decodes while this one generates
    written = 0
    with _progress(options.progress) as bar:
        tasks = {
            scan.spec.name: bar.add_task(
                scan.spec.display,
                total=len(selected),
                completed=sum((s.dataset, s.id) in done for _, s in selected),
                start=False,  # the clock of a dataset starts with its first batch, so its ETA is its own
            )
            for scan, selected in plan
        }
        for number, (dataset, batch) in enumerate(batches):
            bar.start_task(tasks[dataset])
            loaded = [next(decoded) for _ in batch]
            clips = [(s, c) for s, c in loaded if not isinstance(c, Exception)]
            asked = prompts[dataset]
            records = describe_samples(describe_batch, clips, engine, options, asked) if clips else []
            by_id = {s.id: r for (s, _), r in zip(clips, records, strict=True)}
            out = _batch_records(loaded, by_id, store, asked, options)
            if judge is not None:
                judge_records(out, kinds, judge)
            written += store.append(out)
            bar.advance(tasks[dataset], len(batch))
            if number + 1 == len(batches) or batches[number + 1][0] != dataset:
                bar.stop_task(tasks[dataset])
    return written


def run_bench(
    suite: Suite | str | Path,
    data_root: str | Path,
    engine_factory: Callable[[], Engine],
    out: str | Path,
    options: BenchOptions | None = None,
    describe_batch: DescribeBatch = describe_clips,
) -> dict[str, Any]:
    """Run (or resume) a suite into `out`: predictions.jsonl, run.json, results.json, results.md, report.html.

    The data is checked (one-line error listing what is missing) before `engine_factory` is called, and the
    engine is built only if something is left to do. Returns the results object written to results.json.
    """
    from affectreason.bench.report import write_outputs

    options = options or BenchOptions()
    if options.attribution:  # every sample also gets its single-modality ablations
        from affectreason.attribution import attribute_clips

        describe_batch = attribute_clips
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    check_protocol(options.protocol, options.wheel_dir)  # bad protocol or wheel files fail before any work
    scans = check_data(suite.select(options.datasets), data_root)
    root = scans[0].root
    prompt = load_prompt(suite.prompt)
    out = Path(out)
    manifest = build_manifest(suite, scans, options, prompt, root)
    with RunLock(out):
        store = _prepare_out(out, manifest, options.resume)
        plan = [(scan, select_samples(scan, options.limit, options.shard)) for scan in scans]
        generate_pending(plan, store, engine_factory, options, prompt, describe_batch)
        keys = sorted((s.dataset, s.id) for _, selected in plan for _, s in selected)
        records = [store.records[k] for k in keys if k in store.records]
        return write_outputs(suite, records, manifest, out, options.protocol, options.wheel_dir)


def merge_runs(
    out: str | Path, sources: list[str | Path], protocol: str = "affectreason", wheel_dir: str | None = None
) -> dict[str, Any]:
    """Combine shard folders (and whatever `out` already holds) into `out`, then score and report."""
    check_protocol(protocol, wheel_dir)
    with RunLock(out):
        return _merge_locked(Path(out), sources, protocol, wheel_dir)


def _merge_locked(
    out: Path, sources: list[str | Path], protocol: str, wheel_dir: str | None
) -> dict[str, Any]:
    from affectreason.bench.report import write_outputs

    folders = [out] if (out / "run.json").is_file() else []
    folders += [Path(s) for s in sources if Path(s).resolve() != out.resolve()]
    if not folders:
        raise AffectReasonError("nothing to merge: pass run folders made by `affectreason bench`")
    manifests = []
    for folder in folders:
        manifest = read_manifest(folder)
        if manifest is None:
            raise AffectReasonError(f"{folder} is not a bench run folder (no run.json)")
        if manifests and (differs := incompatibility(manifests[0], manifest)):
            raise AffectReasonError(f"cannot merge {folder} with {folders[0]}: {differs}")
        manifests.append(manifest)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for folder in folders:
        for key, record in PredictionStore(folder).load().items():
            if key not in merged or failed(merged[key]):
                merged[key] = record
    manifest = dict(manifests[0], shard=[1, 1], merged_from=[str(f) for f in folders])
    manifest["datasets"] = sorted({d for m in manifests for d in m["datasets"]})
    manifest["selected"] = {k: v for m in manifests for k, v in m.get("selected", {}).items()}
    store = PredictionStore(out)
    if out in folders:
        store.load()
    else:
        store.clear()
    store.append(merged[k] for k in sorted(merged))
    write_json(out / "run.json", manifest)
    suite_file = manifest.get("suite_file")
    suite = load_suite(suite_file if suite_file and Path(suite_file).is_file() else manifest["suite"])
    return write_outputs(suite, [merged[k] for k in sorted(merged)], manifest, out, protocol, wheel_dir)
