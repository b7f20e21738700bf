"""`affectreason serve`: `vllm serve` as a child process when vllm and a GPU are there, else the in-process server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.serve.server import ServeOptions

ENGINES = ("auto", "hf", "vllm")


def pick_engine(engine: str) -> str:
    """`auto` means vLLM when it is installed and a CUDA GPU is visible, the transformers engine otherwise."""
    if engine not in ENGINES:
        raise AffectReasonError(f"unknown serve engine '{engine}': choose one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    from affectreason.engines.vllm import vllm_available

    if not vllm_available():
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() else "hf"


def wait_healthy(process: subprocess.Popen, url: str, timeout: float, interval: float = 1.0) -> None:
    """Poll `url` until it answers 200; a one-line error if the process exits or time runs out first."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            raise AffectReasonError(f"the server process exited with code {code} before it was ready")
        try:
            if httpx.get(url, timeout=interval).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            raise AffectReasonError(f"the server was not ready at {url} after {timeout:.0f} s")
        time.sleep(interval)


def run_child(command: list[str], health_url: str, ready_timeout: float = 1800.0) -> int:
    """Run `command` (e.g. `vllm serve ...`), report when `health_url` answers, forward SIGINT/SIGTERM to it,
    and return its exit code."""
    try:
        process = subprocess.Popen(command)
    except FileNotFoundError:
        raise AffectReasonError(f"'{command[0]}' was not found on PATH") from None

    def forward(signum: int, _frame: Any) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        wait_healthy(process, health_url, ready_timeout)
        print(f"ready: {health_url.rsplit('/', 1)[0]}/v1", file=sys.stderr, flush=True)
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def serve(
    model: str,
    options: ServeOptions,
    *,
    engine: str = "auto",
    dtype: str = "auto",
    quantization: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    vllm_options: dict[str, Any] | None = None,
) -> int:
    """Serve `model` (and its adapters) on `options.host:options.port` until interrupted; returns an exit code."""
    options.validate()
    limits = options.limits()  # validates the media folder before anything heavy starts
    if pick_engine(engine) == "vllm":
        from affectreason.backbones import load_backbone
        from affectreason.engines.vllm import serve_command, vllm_available

        if not vllm_available():
            raise AffectReasonError('--engine vllm needs vllm: pip install -e ".[vllm]" (on a GPU machine)')
        backbone = load_backbone(model, trust_remote_code=trust_remote_code, load_model=False)
        command = serve_command(
            model,
            served_model_name=options.served_model_name,
            adapters=options.adapters,
            native_audio=backbone.native_audio,
            host=options.host,
            port=options.port,
            api_key=options.api_key,
            media_dir=limits.media_dir,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            **(vllm_options or {}),
        )
        return run_child(command, f"http://{options.host}:{options.port}/health")

    if len(options.adapters) > 1:
        raise AffectReasonError("the in-process server holds one adapter; serve several with --engine vllm")
    from affectreason.engines import create_engine
    from affectreason.serve.server import build_app, run

    engine = create_engine(
        "hf",
        model=model,
        adapter=next(iter(options.adapters.values()), None),
        dtype=dtype,
        quantization=quantization,
        device=device,
        trust_remote_code=trust_remote_code,
        batch_size=options.max_batch_size,
    )
    app = build_app(engine, options)
    _share_cores(engine, app.state.media_workers)
    run(app, options.host, options.port)
    return 0


def _share_cores(engine: Any, media_workers: int) -> None:
    """On a CPU device, give generation the cores the media workers leave: more threads than cores make every
    parallel tensor operation wait for a descheduled thread."""
    import torch

    if engine.backbone.device.type == "cpu" and media_workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - media_workers))
