"""The work behind `affectreason describe`: build the engine, walk the clips, print and write records."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from affectreason.describe import (
    DescribeOptions,
    RecordWriter,
    describe_clips,
    describe_paths,
    format_record_text,
    iter_media_paths,
)
from affectreason.engines import EngineOptions
from affectreason.errors import AffectReasonError


@dataclass(frozen=True)
class DescribeOutput:
    """What `describe` prints and writes: the format (`text`, `json`, `jsonl`), an optional file, and the extras
    added to each record (`--attribution` with optional HTML pages, `--verify`)."""

    format: str = "text"
    out: Path | None = None
    attribution: bool = False
    html: Path | None = None
    verify: bool = False


class _Verifier:
    """`describe --verify`: each record gets the `verify` command's verdicts under `verification`."""

    def __init__(self):
        from affectreason.verify import EvidenceCache

        self.evidence = EvidenceCache()

    def add(self, record: dict[str, Any]) -> None:
        from affectreason.verify import verify_record

        try:
            record["verification"] = verify_record(record, self.evidence)
        except (ValueError, OSError, AffectReasonError) as exc:
            record["verification"] = {"error": str(exc)}

    def text(self, record: dict[str, Any]) -> str:
        from affectreason.verify import verification_lines

        result = record["verification"]
        return (
            f"  cue check  error: {result['error']}"
            if "error" in result
            else "\n".join(verification_lines(result))
        )


class _Emitter:
    """Hands each finished record to the writer, the terminal (in the chosen format) and the HTML folder."""

    def __init__(self, output: DescribeOutput) -> None:
        self.output = output
        self.writer = RecordWriter(output.out, keep=output.format == "json")
        self.checker = _Verifier() if output.verify else None

    def __call__(self, record: dict[str, Any]) -> None:
        if self.checker is not None:
            self.checker.add(record)
        self.writer.write(record)
        if self.output.format == "jsonl":
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif self.output.format == "text":
            text = format_record_text(record)
            if self.checker is not None:
                text += "\n" + self.checker.text(record)
            typer.echo(text + "\n")
        if self.output.html is not None and "attribution" in record:
            from affectreason.attribution import write_attribution_html

            write_attribution_html(record, self.output.html)


def _check(inputs: list[Path], options: DescribeOptions, output: DescribeOutput) -> list[Path]:
    """The clips to describe, after the checks that need no model."""
    if output.html is not None and not output.attribution:
        raise AffectReasonError("--html needs --attribution")
    if output.attribution and options.segment:
        raise AffectReasonError("--attribution works on whole clips: drop --segment")
    paths = iter_media_paths(inputs)
    missing = [p for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        raise AffectReasonError(f"file not found: '{missing[0]}'")
    return paths


@contextlib.contextmanager
def _progress(err: Any, clips: int) -> Iterator[tuple[Callable[[int], None], Callable[[int, int], None]]]:
    """A transient progress bar on stderr: `(advance(n), windows(done, total))` callbacks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        clip_task = bar.add_task("clips", total=clips, visible=clips > 1)
        window_task = bar.add_task("windows", total=None, visible=False)

        def windows(done: int, total: int) -> None:
            bar.update(window_task, completed=done, total=total, visible=total > 1)

        yield (lambda n: bar.advance(clip_task, n)), windows


def run_describe(
    inputs: list[Path], options: DescribeOptions, engine: EngineOptions, output: DescribeOutput
) -> int:
    """Describe the inputs; exit code 0 when every clip was described, 1 when some failed."""
    from rich.console import Console

    paths = _check(inputs, options, output)
    describe_batch, engine_batch = describe_clips, options.batch_size
    if output.attribution:  # a clip's ablations share its engine batch (no extra generation loops)
        from affectreason.attribution import RUNS_PER_CLIP, attribute_clips

        describe_batch, engine_batch = attribute_clips, options.batch_size * RUNS_PER_CLIP
    the_engine = engine.create(batch_size=engine_batch)
    emit = _Emitter(output)
    err = Console(stderr=True)
    with _progress(err, len(paths)) as (advance, windows), contextlib.closing(emit.writer):
        failures = describe_paths(
            inputs,
            the_engine,
            options,
            on_record=emit,
            on_warning=lambda message: err.print(message, markup=False, highlight=False, soft_wrap=True),
            progress=advance,
            describe_batch=describe_batch,
            window_progress=windows,
        )
    records = emit.writer.records
    if output.format == "json":
        shown = records[0] if len(records) == 1 and not failures else records
        typer.echo(json.dumps(shown, ensure_ascii=False, indent=2))
    for failure in failures:
        err.print(f"error: {failure.error}", markup=False, highlight=False, soft_wrap=True)
    if not failures:
        return 0
    written = f" and written to {output.out}" if output.out else ""
    summary = f"{len(failures)} of {len(paths)} clips failed; {emit.writer.count} described{written}"
    err.print(summary, markup=False, highlight=False)
    return 1
