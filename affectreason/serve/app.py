"""The in-process OpenAI-compatible server: `/v1/models` and `/v1/chat/completions` on any Engine.

Every failure is a JSON error body (`{"error": {"message", "type", "param", "code"}}`) with a 4xx status
for bad requests and 500 for engine failures; nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from affectreason.engines.hf import Completion, HFEngine, Job
from affectreason.errors import AffectReasonError
from affectreason.prompts import Prompt, load_prompt
from affectreason.serve.batcher import Batcher
from affectreason.serve.limits import Limits, ProtocolError
from affectreason.serve.protocol import ChatCall, check_json, completion_body, parse_chat, stream_chunks
from affectreason.serve.workers import MediaWorkers

log = logging.getLogger("affectreason.serve")
_DISCONNECT_POLL_S = 0.1


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(ProtocolError(status, message, kind).body(), status_code=status)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _read_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(413, f"the request body is {int(declared)} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(413, f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks), parse_constant=_no_constant)
    except RecursionError:
        raise ProtocolError(400, "the request body is nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and over-long integers included
        raise ProtocolError(400, f"the request body is not valid JSON: {exc}") from None
    check_json(body)
    return body


def _install_error_handlers(app: FastAPI) -> None:
    """Every failure a JSON error body: the client's mistakes as 4xx, our defects as 500 (traceback in the log)."""

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        log.info("refused %s %s: %d %s", request.method, request.url.path, exc.status, exc)
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")  # our defect, not the client's: the traceback belongs in the log
        return _error(500, f"internal error ({type(exc).__name__}); see the server log", "server_error")


def _authoriser(api_key: str | None) -> Callable[[Request], Awaitable[None]]:
    """The bearer-key check, as a dependency, not an http middleware: starlette's BaseHTTPMiddleware hides the
    client's disconnect from the endpoint, and cancelling abandoned requests depends on seeing it."""

    async def authorise(request: Request) -> None:
        if api_key:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), api_key.encode()
            ):
                raise ProtocolError(401, "invalid or missing API key", "authentication_error")

    return authorise


async def _admit(
    engine: HFEngine,
    body: Any,
    served: dict[str, str | None],
    limits: Limits,
    prompt: Prompt,
    workers: MediaWorkers | None,
) -> tuple[ChatCall, Job]:
    """The checked call and its job, the clip decoded and the prompt processed once (in a media worker when
    there are workers), the prompt checked against the model's context."""
    try:
        if workers is not None:
            call, features, key, outputs = await workers.prepare(body, served, limits, prompt)
            job = Job(call.request, call.sampling, features=features, key=key, encoded=outputs)
        else:
            call = await run_in_threadpool(parse_chat, body, served, limits, prompt)
            job = Job(call.request, call.sampling)
            await run_in_threadpool(engine.prepare, job)
    except ProtocolError:
        raise
    except AffectReasonError as exc:
        raise ProtocolError(400, str(exc), param="messages") from None
    tokens = job.prompt_tokens
    context = engine.context_length
    if context:
        room = context - tokens
        if room < 1 or (call.max_tokens_given and call.sampling.max_new_tokens > room):
            raise ProtocolError(
                400,
                f"the prompt is {tokens} tokens and max_tokens asks for {call.sampling.max_new_tokens} more;"
                f" the model's context is {context} tokens",
                param="messages",
            )
        job.sampling = replace(job.sampling, max_new_tokens=min(call.sampling.max_new_tokens, room))
    return call, job


async def _until_done(batcher: Batcher, request: Request, job: Job) -> list[Completion] | None:
    """The job's completions, or None (and the job cancelled) when the client disconnects first."""
    task = asyncio.ensure_future(batcher.submit(job))
    while True:
        done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            log.info("client went away: request cancelled")
            return None


def _streamed(response: dict[str, Any], include_usage: bool) -> StreamingResponse:
    """A finished completion as server-sent events, ending in `[DONE]`."""

    async def events() -> AsyncIterator[str]:
        for chunk in stream_chunks(response, include_usage):
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _metrics(batcher: Batcher, workers: MediaWorkers | None) -> str:
    """Scheduling counters in the Prometheus text format."""
    lines = [
        f"affectreason_engine_calls_total {batcher.calls}",
        f"affectreason_engine_jobs_total {batcher.jobs}",
        f"affectreason_queued_jobs {batcher.queued}",
        f"affectreason_running_jobs {batcher.running}",
        f"affectreason_media_workers {workers.processes if workers else 0}",
        f"affectreason_media_workers_encoding {int(bool(workers and workers.encoders))}",
    ]
    return "\n".join(lines) + "\n"


def create_app(
    engine: HFEngine,
    *,
    served: dict[str, str | None],
    api_key: str | None = None,
    limits: Limits | None = None,
    max_batch_size: int = 8,
    max_wait_ms: float = 10.0,
    max_prefill_tokens: int = 2048,
    prompt: str = "describe",
    media_workers: int = 0,
) -> FastAPI:
    """An app serving `engine`; `served` maps each model name clients may ask for to its adapter (or None).
    With `media_workers`, requests are decoded and processed in that many worker processes."""
    limits = limits or Limits()
    default_prompt = load_prompt(prompt)
    batcher = Batcher(
        engine, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_prefill_tokens=max_prefill_tokens
    )
    created = int(time.time())
    workers = MediaWorkers(engine.backbone, media_workers) if media_workers else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if workers is not None:
            await run_in_threadpool(workers.warm)
        await batcher.start()
        yield
        await batcher.stop()
        if workers is not None:
            workers.close()

    app = FastAPI(title="affectreason", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.state.media_workers = media_workers
    _install_error_handlers(app)
    keyed = [Depends(_authoriser(api_key))]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", dependencies=keyed)
    async def metrics() -> Response:
        return Response(_metrics(batcher, workers), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", dependencies=keyed)
    async def models() -> dict[str, Any]:
        owner = getattr(engine, "model_id", "affectreason")
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "affectreason", "root": owner}
            for name in served
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=keyed)
    async def chat(request: Request) -> Any:
        body = await _read_body(request, limits.max_request_bytes)
        call, job = await _admit(engine, body, served, limits, default_prompt, workers)
        try:
            completions = await _until_done(batcher, request, job)
        except AffectReasonError as exc:
            if isinstance(exc, ProtocolError):
                raise
            raise ProtocolError(400, str(exc)) from None
        if completions is None:
            return Response(status_code=499)  # nobody is listening; nginx's "client closed request"
        response = completion_body(call, completions)
        return _streamed(response, call.include_usage) if call.stream else response

    return app
