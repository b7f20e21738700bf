"""CLI: `affectreason serve`: an OpenAI-compatible emotion-reasoning server (vLLM or in process)."""

from __future__ import annotations

from pathlib import Path

import typer

_MODEL = typer.Option(None, "--model", "-m", help="Hub id or local checkpoint (default: Qwen2.5-Omni-3B).")
_ADAPTER = typer.Option(
    [], "--adapter", help="NAME=PATH of a peft adapter, served as model NAME (repeatable with vLLM)."
)
_API_KEY = typer.Option(
    None, "--api-key", envvar="AFFECTREASON_API_KEY", help="Require 'Authorization: Bearer KEY'."
)
_SERVED_MODEL_NAME = typer.Option(None, "--served-model-name", help="Name clients use (default: --model).")
_MEDIA_DIR = typer.Option(
    None, "--media-dir", help="Allow file:// media URLs inside this folder (none are read otherwise)."
)
_MAX_BATCH_SIZE = typer.Option(8, "--max-batch-size", help="In process: requests generated together.")
_BATCH_WAIT_MS = typer.Option(
    10.0,
    "--batch-wait-ms",
    help="In process: how long a call waits for others to join when none has started.",
)
_MAX_PREFILL_TOKENS = typer.Option(
    2048,
    "--max-prefill-tokens",
    help="In process: padded prompt tokens prefilled together (a longer prompt goes alone).",
)
_MAX_FRAMES = typer.Option(64, "--max-frames", help="In process: most frames one request may ask for.")
_MAX_DURATION = typer.Option(600.0, "--max-duration", help="In process: longest media accepted (s).")
_MAX_TEXT_KB = typer.Option(
    256.0, "--max-text-kb", help="In process: longest prompt plus transcript accepted (KiB)."
)
_MEDIA_WORKERS = typer.Option(
    None,
    "--media-workers",
    help="In process: processes that decode and process requests beside generation (default: one per two cores; 0: threads).",
)
_TRUST_REMOTE_CODE = typer.Option(False, "--trust-remote-code", help="Allow model code from the hub.")


def serve(
    model: str = _MODEL,
    adapter: list[str] = _ADAPTER,
    engine: str = typer.Option("auto", "--engine", help="auto (vLLM when installed with a GPU), vllm or hf."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the server."),
    port: int = typer.Option(8000, "--port"),
    api_key: str = _API_KEY,
    served_model_name: str = _SERVED_MODEL_NAME,
    media_dir: Path = _MEDIA_DIR,
    max_batch_size: int = _MAX_BATCH_SIZE,
    batch_wait_ms: float = _BATCH_WAIT_MS,
    max_prefill_tokens: int = _MAX_PREFILL_TOKENS,
    max_request_mb: float = typer.Option(64.0, "--max-request-mb", help="In process: request body limit."),
    max_frames: int = _MAX_FRAMES,
    max_duration: float = _MAX_DURATION,
    max_text_kb: float = _MAX_TEXT_KB,
    media_workers: int = _MEDIA_WORKERS,
    insecure: bool = typer.Option(False, "--insecure", help="Allow a non-loopback --host without --api-key."),
    prompt: str = typer.Option("describe", "--prompt", help="Prompt used when a request sends no text."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bf16, fp16 or fp32."),
    quantization: str = typer.Option(None, "--quantization", "-q", help="In process: 4bit or 8bit."),
    device: str = typer.Option(None, "--device", help="In process: cpu, cuda, cuda:1 …"),
    tensor_parallel_size: int = typer.Option(1, "--tensor-parallel-size", help="vLLM: GPUs per replica."),
    data_parallel_size: int = typer.Option(1, "--data-parallel-size", help="vLLM: replicas."),
    gpu_memory_utilization: float = typer.Option(0.9, "--gpu-memory-utilization", help="vLLM: memory share."),
    max_model_len: int = typer.Option(None, "--max-model-len", help="vLLM: context length."),
    chat_template: Path = typer.Option(None, "--chat-template", help="vLLM: a Jinja chat template file."),
    trust_remote_code: bool = _TRUST_REMOTE_CODE,
) -> int:
    """Serve /v1/models and /v1/chat/completions (video, audio and text parts) for the official openai client."""
    from affectreason.backbones import DEFAULT_MODEL
    from affectreason.backbones.adapters import parse_adapters
    from affectreason.serve.launch import serve as run_server
    from affectreason.serve.server import ServeOptions

    options = ServeOptions(
        host=host,
        port=port,
        api_key=api_key,
        served_model_name=served_model_name,
        adapters=parse_adapters(adapter),
        media_dir=media_dir,
        max_batch_size=max_batch_size,
        max_wait_ms=batch_wait_ms,
        max_prefill_tokens=max_prefill_tokens,
        max_request_mb=max_request_mb,
        max_frames=max_frames,
        max_duration=max_duration,
        max_text_kb=max_text_kb,
        media_workers=media_workers,
        prompt=prompt,
        insecure=insecure,
    )
    vllm_options = {
        "tensor_parallel_size": tensor_parallel_size,
        "data_parallel_size": data_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_model_len": max_model_len,
        "chat_template": chat_template,
    }
    return run_server(
        model or DEFAULT_MODEL,
        options,
        engine=engine,
        dtype=dtype,
        quantization=quantization,
        device=device,
        trust_remote_code=trust_remote_code,
        vllm_options=vllm_options,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
