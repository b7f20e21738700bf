"""Scheduling: concurrent HTTP requests run in `HFEngine.complete` calls, one call at a time.

Generation runs in one worker thread (the model keeps per-call state, so calls never overlap). New prompts go
first while fewer than `max_batch_size` jobs have started: the shortest with those it pads little against, up
to `max_prefill_tokens` padded prompt tokens (a longer prompt is prefilled alone). A call of new prompts yields
right after their prefill when others wait, keeping each job's KV cache; started jobs then decode together in
one call whatever their prompt lengths, and that call ends as soon as one of them is done, so its answer leaves
at once and the rest resume with whatever joined meanwhile. A decoding call also yields after a short slice
when new prompts wait, so nobody waits behind a long generation; a job that has waited `max_age_s` goes first
whatever its length. When nothing has started, a call waits up to `max_wait_ms` for concurrent requests to join
it. Seeds and token limits may differ within a call. A job whose client went away is dropped from the queue, or
stopped at its next token. When a call fails, its jobs are retried one by one so a single bad request cannot
fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from affectreason.engines.hf import PAD_SHARE, PAD_SLACK, Completion, HFEngine, Job
from affectreason.serve.limits import ProtocolError


@dataclass
class _Item:
    job: Job
    future: asyncio.Future
    since: float


class Batcher:
    """Queue jobs and run them on `engine` in calls of up to `max_batch_size` jobs."""

    def __init__(
        self,
        engine: HFEngine,
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 256,
        max_prefill_tokens: int = 2048,
        max_age_s: float = 2.0,
        slice_s: float = 0.5,
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.max_prefill_tokens = max_prefill_tokens
        self.max_age = max_age_s
        self.slice_s = slice_s
        self.batches: deque[int] = deque(maxlen=10_000)  # sizes of the latest engine calls, for tests
        self.calls = 0  # engine calls made, and the jobs they carried, for /metrics
        self.jobs = 0
        self.running = 0  # jobs in the engine call under way
        self._pending: list[_Item] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="affectreason-generate")

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for item in self._pending:
            item.job.cancelled.set()
        self._pool.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def submit(self, job: Job) -> list[Completion]:
        """The job's completions once its call has run; cancelling the await cancels the job."""
        assert self._wake is not None, "Batcher.start() was not awaited"
        if len(self._pending) >= self.max_queue:
            raise ProtocolError(
                429, "the server is busy: too many queued requests, retry later", "rate_limit_error"
            )
        loop = asyncio.get_running_loop()
        item = _Item(job, loop.create_future(), loop.time())
        self._pending.append(item)
        self._wake.set()
        try:
            return await item.future
        except asyncio.CancelledError:
            job.cancelled.set()
            raise

    def _pick(self, now: float) -> list[_Item]:
        """The oldest job if it waited too long; else new prompts while fewer than `max_batch_size` jobs hold
        kept caches (the shortest first, with those that pad little against it), so they join the decoding;
        else the started jobs, resumed together."""
        self._pending = [i for i in self._pending if not (i.job.cancelled.is_set() or i.future.done())]
        if not self._pending:
            return []
        started = [i for i in self._pending if i.job.cache is not None]
        fresh = [i for i in self._pending if i.job.cache is None]
        room = self.max_batch_size - len(started)
        aged = [i for i in self._pending if now - i.since >= self.max_age]
        if aged:
            first = min(aged, key=lambda i: i.since)
        elif fresh and room > 0:
            first = min(fresh, key=lambda i: (i.job.prompt_tokens, i.since))
        else:
            first = min(started, key=lambda i: i.since)
        resuming = first.job.cache is not None
        size = self.max_batch_size if resuming else max(1, room)
        chosen, longest, shortest = [first], first.job.prompt_tokens, first.job.prompt_tokens
        for item in sorted(started if resuming else fresh, key=lambda i: (i.job.prompt_tokens, i.since)):
            if len(chosen) >= size:
                break
            if item is first:
                continue
            width = max(longest, item.job.prompt_tokens)
            if not resuming and width * (len(chosen) + 1) > self.max_prefill_tokens:
                continue
            # new prompts only with those the engine would pad into one batch: a call answers all its jobs at its
            # end, so a short job must not wait for a long one's prefill; resumed jobs have no prefill to pad
            low = min(shortest, item.job.prompt_tokens)
            if not resuming and width - low > PAD_SLACK + PAD_SHARE * low:
                continue
            shortest = low
            chosen.append(item)
            longest = width
        picked = {id(i) for i in chosen}
        self._pending = [i for i in self._pending if id(i) not in picked]
        return chosen

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            # with nothing started, let concurrent requests join this call (jobs that queued during the last call
            # have waited already); started jobs are work enough, and new prompts join their decoding anyway
            waited = loop.time() - max((i.since for i in self._pending), default=loop.time())
            started = any(i.job.cache is not None for i in self._pending)
            if not started and len(self._pending) < self.max_batch_size and waited < self.max_wait:
                await asyncio.sleep(self.max_wait - waited)
            items = self._pick(loop.time())
            if not self._pending:
                self._wake.clear()
            if items:
                await self._run(items)

    async def _run(self, items: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        self.batches.append(len(items))
        self.calls += 1
        self.jobs += len(items)
        self.running = len(items)
        try:
            results = await loop.run_in_executor(
                self._pool, self.engine.complete, [i.job for i in items], self._waiting, self.slice_s
            )
        except Exception as exc:
            self.running = 0
            if len(items) > 1:
                for item in items:
                    await self._run([item])
                return
            if not items[0].future.done():
                items[0].future.set_exception(exc)
            return
        self.running = 0
        for item, completions in zip(items, results, strict=True):
            if any(c.finish_reason == "preempted" for c in completions) and not item.future.done():
                self._pending.append(item)  # it continues later, keeping its place in time
                assert self._wake is not None
                self._wake.set()
            elif not item.future.done():
                item.future.set_result(completions)

    def _waiting(self) -> bool:
        """Whether jobs wait for the model (read from the worker thread)."""
        return any(not i.job.cancelled.is_set() for i in self._pending)
