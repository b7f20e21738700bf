"""Micro-batching: concurrent HTTP requests collected for a few milliseconds into one `Engine.generate` call.

Generation runs in one worker thread, so while a batch is on the model the next one fills up; requests with
different sampling parameters go in separate calls. When a batch fails, its requests are retried one by one
so a single bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple

from affectreason.engines.base import Engine, Request, SamplingParams
from affectreason.serve.protocol import ProtocolError

_Item = tuple[Request, SamplingParams, asyncio.Future]


class Batcher:
    """Queue requests and run them on `engine` in batches of up to `max_batch_size`."""

    def __init__(
        self, engine: Engine, max_batch_size: int = 8, max_wait_ms: float = 10.0, max_queue: int = 256
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.batches: list[int] = []  # sizes of the engine calls made, for tests and the perf script
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="affectreason-generate")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, request: Request, sampling: SamplingParams) -> list[str]:
        """The request's `num_return_sequences` texts, once its batch has run."""
        assert self._queue is not None, "Batcher.start() was not awaited"
        if self._queue.qsize() >= self.max_queue:
            raise ProtocolError(
                429, "the server is busy: too many queued requests, retry later", "rate_limit_error"
            )
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, sampling, future))
        return await future

    async def _collect(self) -> list[_Item]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            groups: dict[tuple, list[_Item]] = defaultdict(list)
            for item in batch:
                if not item[2].cancelled():
                    groups[astuple(item[1])].append(item)
            for items in groups.values():
                await self._run(items)

    async def _run(self, items: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        sampling = items[0][1]
        self.batches.append(len(items))
        try:
            texts = await loop.run_in_executor(
                self._pool, self.engine.generate, [i[0] for i in items], sampling
            )
        except Exception as exc:
            if len(items) > 1:
                for item in items:
                    await self._run([item])
                return
            if not items[0][2].done():
                items[0][2].set_exception(exc)
            return
        n = sampling.num_return_sequences
        for k, (_, _, future) in enumerate(items):
            if not future.done():
                future.set_result(texts[k * n : (k + 1) * n])
