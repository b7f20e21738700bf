"""Media workers: request checking, clip decoding and prompt processing in separate processes.

Decoding and the processor are Python-heavy; run in threads of the serving process they hold the GIL that the
generation thread re-takes after every tensor operation, and generation slowed 3x under load. In worker
processes (each with the processor, one torch thread) they run beside generation instead, and only the
processed tensors come back. On a CPU device the workers also run the vision encoders, on the model's weights
shared with them (moved into shared memory once, not copied), so the generation thread prefills only the
language model. A worker that dies (a decoder crash on a hostile file) is replaced, and the request that was
running is refused, not the server.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Hashable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from affectreason.engines import encoded
from affectreason.media import Clip
from affectreason.prompts import Prompt
from affectreason.serve.limits import Limits, ProtocolError
from affectreason.serve.protocol import ChatCall, parse_chat

if TYPE_CHECKING:
    from transformers import BatchFeature

    from affectreason.backbones import Backbone

_backbone: Backbone | None = (
    None  # this worker process's backbone: the processor, and the shared model or None
)


def auto_workers() -> int:
    """One worker per two cores beside the generation thread, at least one and at most eight."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def shares_encoders(backbone: Backbone) -> bool:
    """Whether media workers can run `backbone`'s vision encoders: a model on the CPU that takes encoder outputs
    before its prefill, whose weights fit in the free shared memory (`/dev/shm` is 64 MiB in a default Docker
    container) with room to spare."""
    import shutil

    model = backbone.model
    if model is None or backbone.device.type != "cpu" or not encoded.supported(model):
        return False
    size = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return False
    return 2 * size < free


def _start(backbone_class: type, processor: Any, model_id: str, model: Any) -> None:
    import torch

    global _backbone
    torch.set_num_threads(1)  # the cores belong to generation; a request's processing is small
    _backbone = backbone_class(model, processor, model_id=model_id)


def _prepare(
    body: Any, served: dict[str, str | None], limits: Limits, prompt: Prompt
) -> tuple[ChatCall, dict[str, Any], Hashable, dict[str, Any] | None]:
    """In a worker: the checked call (its clip reduced to what the response reports), its model inputs as
    numpy arrays (plain pickles, no shared-memory handles), its batch key, and with a shared model its vision
    encoder outputs (as numpy arrays too; the pixels they replace stay here)."""
    assert _backbone is not None, "the media worker was not started"
    call = parse_chat(body, served, limits, prompt)
    features = _backbone.build_inputs([call.request])
    key = _backbone.batch_key(call.request)
    outputs = None
    if _backbone.model is not None:
        outputs = encoded.to_numpy(encoded.encode(_backbone, features))
        features = encoded.without_pixels(features)
    arrays = {k: v.numpy() if hasattr(v, "numpy") else v for k, v in features.items()}
    clip = call.request.clip
    light = Clip(frames=None, frame_times=np.zeros(0), audio=None, duration=clip.duration, source=clip.source)
    return replace(call, request=replace(call.request, clip=light)), arrays, key, outputs


def _tensors(arrays: dict[str, Any]) -> BatchFeature:
    import torch
    from transformers import BatchFeature

    return BatchFeature(
        {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in arrays.items()}
    )


class MediaWorkers:
    """A pool of `processes` worker processes preparing chat calls for `backbone`'s model, running its vision
    encoders too where they can (see `shares_encoders`)."""

    def __init__(self, backbone: Backbone, processes: int) -> None:
        if processes < 1:
            raise ValueError("media workers need at least one process")
        self.encoders = shares_encoders(backbone)
        # the model's storage moves to shared memory once; each worker maps the same pages
        model = backbone.model.share_memory() if self.encoders else None
        self._args = (type(backbone), backbone.processor, backbone.model_id, model)
        self.processes = processes
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: the serving process runs threads (uvicorn, generation), which fork would copy mid-state
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=_start, initargs=self._args
        )

    def warm(self) -> None:
        """Start every worker now (each imports torch and transformers), not on the first requests."""
        for future in [self._pool.submit(os.getpid) for _ in range(self.processes)]:
            future.result()

    async def prepare(
        self, body: Any, served: dict[str, str | None], limits: Limits, prompt: Prompt
    ) -> tuple[ChatCall, BatchFeature, Hashable, dict[str, Any] | None]:
        """The checked call, its model inputs and batch key, prepared in a worker, and its vision encoder outputs
        when the workers run the encoders."""
        loop = asyncio.get_running_loop()
        for attempt in range(2):  # a request caught in another one's crash succeeds on the new pool
            pool = self._pool
            try:
                call, arrays, key, outputs = await loop.run_in_executor(
                    pool, _prepare, body, served, limits, prompt
                )
                break
            except BrokenProcessPool:
                if self._pool is pool:  # the first request to notice replaces the pool
                    self._pool = self._new_pool()
                    pool.shutdown(wait=False, cancel_futures=True)
                if attempt:
                    raise ProtocolError(
                        400, "the media stopped the decoder (its worker process died)"
                    ) from None
        return call, _tensors(arrays), key, None if outputs is None else encoded.from_numpy(outputs)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
