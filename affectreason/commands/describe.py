"""CLI: `affectreason describe`: clips in, explainable emotion rationales out (text, JSON or JSONL)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from affectreason.commands import options


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


def describe(
    inputs: list[Path] = typer.Argument(..., help="Media files or folders of them."),
    model: str = options.MODEL,
    adapter: str = options.ADAPTER,
    engine: str = options.ENGINE,
    endpoint: str = options.ENDPOINT,
    api_key: str = options.API_KEY,
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", "-f", help="text, json or jsonl."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Also write the records here (JSONL, or a JSON list for .json)."
    ),
    frames: int = options.FRAMES,
    fps: float = options.FPS,
    max_frames: int = options.MAX_FRAMES,
    max_pixels: int = options.MAX_PIXELS,
    segment: float = typer.Option(None, "--segment", help="Describe long clips window by window (seconds)."),
    subtitle: str = typer.Option(None, "--subtitle", help="Transcript text, or a .txt/.srt/.vtt file."),
    prompt: str = typer.Option("describe", "--prompt", help="A packaged prompt name or a prompt file."),
    temperature: float = options.TEMPERATURE,
    top_p: float = options.TOP_P,
    top_k: int = options.TOP_K,
    min_p: float = options.MIN_P,
    repetition_penalty: float = options.REPETITION_PENALTY,
    max_new_tokens: int = options.MAX_NEW_TOKENS,
    seed: int = options.SEED,
    batch_size: int = options.BATCH_SIZE,
    dtype: str = options.DTYPE,
    quantization: str = options.QUANTIZATION,
    device: str = options.DEVICE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    attribution: bool = typer.Option(
        False, "--attribution", help="Also run video-, audio- and text-only ablations."
    ),
    html: Path = typer.Option(
        None, "--html", help="With --attribution: write an HTML page per clip into this folder."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Check each cue against what is measured in the clip (see `verify`)."
    ),
) -> int:
    """Describe each clip: visual, acoustic and lexical cues, reasoning, emotions, valence, arousal, confidence."""
    arguments = dict(locals())
    from affectreason.commands.describe_run import run_describe

    return run_describe(**arguments)


def register(app: typer.Typer) -> None:
    app.command("describe")(describe)
