"""CLI: `affectreason describe`: clips in, explainable emotion rationales out (text, JSON or JSONL)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


def describe(
    inputs: list[Path] = typer.Argument(..., help="Media files or folders of them."),
    model: str = typer.Option(
        None, "--model", "-m", help="Hub id or local checkpoint (default: Qwen2.5-Omni-3B)."
    ),
    adapter: str = typer.Option(None, "--adapter", help="A peft adapter folder (or a served adapter name)."),
    engine: str = typer.Option("hf", "--engine", help="hf (in process), vllm (offline) or openai."),
    endpoint: str = typer.Option(
        None, "--endpoint", help="An OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."
    ),
    api_key: str = typer.Option(
        None, "--api-key", envvar="AFFECTREASON_API_KEY", help="API key for --endpoint."
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", "-f", help="text, json or jsonl."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Also write the records here (JSONL, or a JSON list for .json)."
    ),
    frames: int = typer.Option(16, "--frames", help="Frames sampled uniformly per clip (or window)."),
    fps: float = typer.Option(None, "--fps", help="Sample at this rate instead of a fixed count."),
    max_frames: int = typer.Option(64, "--max-frames", help="Cap on sampled frames."),
    max_pixels: int = typer.Option(360 * 640, "--max-pixels", help="Cap on pixels per frame."),
    segment: float = typer.Option(None, "--segment", help="Describe long clips window by window (seconds)."),
    subtitle: str = typer.Option(None, "--subtitle", help="Transcript text, or a .txt/.srt/.vtt file."),
    prompt: str = typer.Option("describe", "--prompt", help="A packaged prompt name or a prompt file."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 means greedy decoding."),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens"),
    seed: int = typer.Option(None, "--seed", help="Seed for sampled decoding."),
    batch_size: int = typer.Option(4, "--batch-size", help="Clips generated together."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bf16, fp16 or fp32."),
    quantization: str = typer.Option(None, "--quantization", "-q", help="4bit or 8bit (bitsandbytes)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1 … (default: best available)."),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Allow model code from the hub."
    ),
    attribution: bool = typer.Option(
        False, "--attribution", help="Also run video-, audio- and text-only ablations."
    ),
    html: Path = typer.Option(
        None, "--html", help="With --attribution: write an HTML page per clip into this folder."
    ),
) -> int:
    """Describe each clip: visual, acoustic and lexical cues, reasoning, emotions, valence, arousal, confidence."""
    arguments = dict(locals())
    from affectreason.commands.describe_run import run_describe

    return run_describe(**arguments)


def register(app: typer.Typer) -> None:
    app.command("describe")(describe)
