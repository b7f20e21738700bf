"""Running the in-process server: blocking under uvicorn (`affectreason serve`), or in a background thread
on a pre-bound loopback socket (tests, the throughput benchmark, notebooks)."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.serve.limits import Limits


@dataclass
class ServeOptions:
    """Everything `affectreason serve` needs besides the model."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    served_model_name: str | None = None
    adapters: dict[str, str] = field(default_factory=dict)  # served name -> adapter path
    media_dir: Path | None = None
    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    max_prefill_tokens: int = 2048
    max_request_mb: float = 64.0
    max_frames: int = 64
    max_duration: float = 600.0
    max_text_kb: float = 256.0
    prompt: str = "describe"
    insecure: bool = False
    media_workers: int | None = None  # processes decoding and processing requests; None: one per two cores

    def validate(self) -> None:
        """Refuse setups that switch auth off by accident or limits that make no sense, before anything loads."""
        if self.api_key is not None and not self.api_key.strip():
            raise AffectReasonError("--api-key is empty: give a key, or leave it out (loopback only)")
        if self.api_key is None and os.environ.get(API_KEY_ENV) is not None:
            raise AffectReasonError(
                f"{API_KEY_ENV} is set but empty: give a key, or unset it (loopback only)"
            )
        if not self.api_key and not is_loopback(self.host) and not self.insecure:
            raise AffectReasonError(
                f"--host {self.host} exposes the server without a key: pass --api-key (or {API_KEY_ENV}),"
                " or --insecure to serve without one"
            )
        checks = {
            "--port": (self.port, 0, 65535),
            "--max-batch-size": (self.max_batch_size, 1, 4096),
            "--batch-wait-ms": (self.max_wait_ms, 0, 60_000),
            "--max-prefill-tokens": (self.max_prefill_tokens, 1, 1_048_576),
            "--max-request-mb": (self.max_request_mb, 0.001, 16_384),
            "--max-frames": (self.max_frames, 1, 4096),
            "--max-duration": (self.max_duration, 0.1, 86_400),
            "--max-text-kb": (self.max_text_kb, 0.001, 65_536),
            "--media-workers": (self.media_workers or 0, 0, 64),
        }
        for flag, (value, low, high) in checks.items():
            if not low <= value <= high:  # NaN fails this too
                low_s, high_s = (f"{v:,}" if isinstance(v, int) else f"{v:g}" for v in (low, high))
                raise AffectReasonError(
                    f"{flag} {value:g} is out of range: it must be between {low_s} and {high_s}"
                )

    def limits(self) -> Limits:
        media_dir = Path(self.media_dir).expanduser().resolve() if self.media_dir else None
        if media_dir is not None and not media_dir.is_dir():
            raise AffectReasonError(f"--media-dir '{self.media_dir}' is not a folder")
        return Limits(
            max_request_bytes=int(self.max_request_mb * 1024 * 1024),
            max_frames=self.max_frames,
            max_duration=self.max_duration,
            max_text_chars=int(self.max_text_kb * 1024),
            media_dir=media_dir,
        )


API_KEY_ENV = "AFFECTREASON_API_KEY"


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_app(engine: Any, options: ServeOptions) -> Any:
    """The FastAPI app for `engine`: served under the adapter's name when the engine holds an adapter,
    under `served_model_name` (default: the model id) otherwise."""
    from affectreason.serve.app import create_app
    from affectreason.serve.workers import auto_workers

    names = list(options.adapters) or [options.served_model_name or engine.model_id]
    return create_app(
        engine,
        served=dict.fromkeys(names),
        api_key=options.api_key,
        limits=options.limits(),
        max_batch_size=options.max_batch_size,
        max_wait_ms=options.max_wait_ms,
        max_prefill_tokens=options.max_prefill_tokens,
        prompt=options.prompt,
        media_workers=auto_workers() if options.media_workers is None else options.media_workers,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one), so the port is known before the server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # asyncio turns Nagle off (TCP_NODELAY) only on sockets that name IPPROTO_TCP; with it on, every kept-alive
    # response's body waited 40 ms for the client's delayed ACK of its headers
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AffectReasonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def run(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve `app` until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on http://{shown}:{sock.getsockname()[1]}/v1", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it already handled with a graceful shutdown
        pass


class BackgroundServer:
    """`app` served on a loopback port in a daemon thread; use as a context manager. `url` ends in `/v1`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import uvicorn

        self._sock = bind(host, port)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/v1"
        self.app = app
        self._server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=2))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AffectReasonError("the background server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
