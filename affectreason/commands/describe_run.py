"""The work behind `affectreason describe`: build the engine, walk the clips, print and write records."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import typer

from affectreason.errors import AffectReasonError


class _RecordWriter:
    """Writes each record as soon as it exists: JSONL appended line by line, or a JSON list kept valid by
    overwriting only its closing bracket (O(record) per write, never the whole file)."""

    _CLOSE = b"\n]\n"

    def __init__(self, path: Path | None, keep: bool = True):
        self.path = path
        self.keep = keep  # keep the records in memory (for the JSON printed at the end)
        self.records: list[dict[str, Any]] = []
        self.count = 0
        self._handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".json":
                self._handle = path.open("wb")
                self._handle.write(b"[" + self._CLOSE)
                self._handle.flush()
            else:
                path.open("a", encoding="utf-8").close()

    def write(self, record: dict[str, Any]) -> None:
        self.count += 1
        if self.keep:
            self.records.append(record)
        if self.path is None:
            return
        if self._handle is not None:
            item = textwrap.indent(json.dumps(record, ensure_ascii=False, indent=2), "  ").encode("utf-8")
            self._handle.seek(-len(self._CLOSE), os.SEEK_END)
            self._handle.write((b",\n" if self.count > 1 else b"\n") + item + self._CLOSE)
            self._handle.flush()
        else:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


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


def run_describe(
    inputs: list[Path],
    output_format: Any,
    out: Path | None,
    model: str | None,
    adapter: str | None,
    engine: str,
    endpoint: str | None,
    api_key: str | None,
    dtype: str,
    quantization: str | None,
    device: str | None,
    trust_remote_code: bool,
    batch_size: int,
    attribution: bool,
    html: Path | None,
    verify: bool = False,
    **sampling: Any,
) -> int:
    """Describe the inputs; exit code 0 when every clip was described, 1 when some failed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from affectreason.pipeline import (
        DescribeOptions,
        create_engine,
        describe_clips,
        describe_paths,
        format_record_text,
        iter_media_paths,
    )

    fmt = getattr(output_format, "value", output_format)
    options = DescribeOptions(batch_size=batch_size, **sampling)
    if html is not None and not attribution:
        raise AffectReasonError("--html needs --attribution")
    if attribution and options.segment:
        raise AffectReasonError("--attribution works on whole clips: drop --segment")
    paths = iter_media_paths(inputs)
    missing = [p for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        raise AffectReasonError(f"file not found: '{missing[0]}'")
    engine_batch = batch_size
    if attribution:  # a clip's ablations share its engine batch (no extra generation loops)
        from affectreason.attribution import RUNS_PER_CLIP

        engine_batch = batch_size * RUNS_PER_CLIP
    the_engine = create_engine(
        engine,
        model=model,
        adapter=adapter,
        endpoint=endpoint,
        api_key=api_key,
        dtype=dtype,
        quantization=quantization,
        batch_size=engine_batch,
        device=device,
        trust_remote_code=trust_remote_code,
    )
    describe_batch = describe_clips
    if attribution:
        from affectreason.attribution import attribute_clips

        describe_batch = attribute_clips

    writer = _RecordWriter(out, keep=fmt == "json")
    err = Console(stderr=True)

    checker = _Verifier() if verify else None

    def emit(record: dict[str, Any]) -> None:
        if checker is not None:
            checker.add(record)
        writer.write(record)
        if fmt == "jsonl":
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif fmt == "text":
            text = format_record_text(record)
            if checker is not None:
                text += "\n" + checker.text(record)
            typer.echo(text + "\n")
        if html is not None and "attribution" in record:
            from affectreason.attribution import write_attribution_html

            write_attribution_html(record, html)

    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar,
        contextlib.closing(writer),
    ):
        clips = bar.add_task("clips", total=len(paths), visible=len(paths) > 1)
        windows = bar.add_task("windows", total=None, visible=False)

        def window_progress(done: int, total: int) -> None:
            bar.update(windows, completed=done, total=total, visible=total > 1)

        failures = describe_paths(
            inputs,
            the_engine,
            options,
            on_record=emit,
            on_warning=lambda message: err.print(message, markup=False, highlight=False, soft_wrap=True),
            progress=lambda n: bar.advance(clips, n),
            describe_batch=describe_batch,
            window_progress=window_progress,
        )
    if fmt == "json":
        records = writer.records
        typer.echo(
            json.dumps(
                records[0] if len(records) == 1 and not failures else records, ensure_ascii=False, indent=2
            )
        )
    for failure in failures:
        err.print(f"error: {failure.error}", markup=False, highlight=False, soft_wrap=True)
    if failures:
        err.print(
            f"{len(failures)} of {len(paths)} clips failed; {writer.count} described"
            + (f" and written to {out}" if out else ""),
            markup=False,
            highlight=False,
        )
        return 1
    return 0
