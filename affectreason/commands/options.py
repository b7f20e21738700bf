"""CLI options shared by the commands that run a model over clips (`describe`, `bench`)."""

from __future__ import annotations

import typer

MODEL = typer.Option(None, "--model", "-m", help="Hub id or local checkpoint (default: Qwen2.5-Omni-3B).")
ADAPTER = typer.Option(None, "--adapter", help="A peft adapter folder (or a served adapter name).")
ENGINE = typer.Option("hf", "--engine", help="hf (in process), vllm (offline) or openai.")
ENDPOINT = typer.Option(
    None, "--endpoint", help="An OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."
)
API_KEY = typer.Option(None, "--api-key", envvar="AFFECTREASON_API_KEY", help="API key for --endpoint.")
FRAMES = typer.Option(16, "--frames", help="Frames sampled uniformly per clip (or window).")
FPS = typer.Option(None, "--fps", help="Sample at this rate instead of a fixed count.")
MAX_FRAMES = typer.Option(64, "--max-frames", help="Cap on sampled frames.")
MAX_PIXELS = typer.Option(360 * 640, "--max-pixels", help="Cap on pixels per frame.")
TEMPERATURE = typer.Option(0.0, "--temperature", help="0 means greedy decoding (the default).")
TOP_P = typer.Option(1.0, "--top-p", help="Nucleus sampling mass, in (0, 1].")
TOP_K = typer.Option(0, "--top-k", help="Sample from the k likeliest tokens (0: off).")
MIN_P = typer.Option(0.0, "--min-p", help="Drop tokens below this fraction of the top probability (0: off).")
REPETITION_PENALTY = typer.Option(1.0, "--repetition-penalty", help="Above 1 penalises repeats (1: off).")
MAX_NEW_TOKENS = typer.Option(512, "--max-new-tokens")
SEED = typer.Option(None, "--seed", help="Seed for sampled decoding.")
BATCH_SIZE = typer.Option(4, "--batch-size", help="Clips generated together.")
DTYPE = typer.Option("auto", "--dtype", help="auto, bf16, fp16 or fp32.")
QUANTIZATION = typer.Option(None, "--quantization", "-q", help="4bit or 8bit (bitsandbytes).")
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:1 … (default: best available).")
TRUST_REMOTE_CODE = typer.Option(False, "--trust-remote-code", help="Allow model code from the hub.")
