"""Per-row decoding hooks for `model.generate`, so requests with their own seeds and token limits share a
batch: a logits processor that samples each row with its own generator, and a per-row stopping criterion."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from affectreason.decoding import SamplingParams


class RowSampler(LogitsProcessor):
    """Temperature, top-k, top-p and min-p (transformers' own warpers), then one token drawn per row from that
    row's own generator; every other token is masked, so greedy selection takes the drawn one. Run with a
    greedy generation config (repetition penalty and suppressed tokens still apply before it)."""

    def __init__(self, sampling: SamplingParams, generators: list[torch.Generator]):
        # the filters in the order transformers applies them when it samples itself
        warpers: list[LogitsProcessor] = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_k > 0:
            warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            warpers.append(TopPLogitsWarper(sampling.top_p))
        if sampling.min_p > 0:
            warpers.append(MinPLogitsWarper(sampling.min_p))
        self.warpers = LogitsProcessorList(warpers)
        self.generators = generators

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(self.warpers(input_ids, scores).float(), dim=-1)
        drawn = torch.cat(
            [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators, strict=True)]
        )
        masked = torch.full_like(scores, float("-inf"))
        return masked.scatter_(1, drawn[:, None], 0.0)


class RowStops(StoppingCriteria):
    """Ends each row at its own eos, its own token limit, or when its request is cancelled, and records which
    (`finish`: stop / length / cancelled / preempted) and after how many new tokens (`count`).

    With `waiting`, every unfinished row is preempted once others wait and the call has run `slice_s` and at
    least `prefills_per_slice` times its prefill (3 by default, so a job that repeats its prefill on resume gains
    more than that costs; 0 for a job that resumes from its kept cache). With `end_on_finish`, the rows still
    running are preempted as soon as one row ends, so its answer leaves at once (the others resume from their
    kept caches, with whatever joined meanwhile)."""

    def __init__(
        self,
        prompt_width: int,
        limits: list[int],
        eos: set[int],
        cancelled: list[threading.Event],
        waiting: Callable[[], bool] | None = None,
        slice_s: float = 0.5,
        prefills_per_slice: float = 3.0,
        end_on_finish: bool = False,
    ):
        self.prompt_width, self.limits, self.eos, self.cancelled = prompt_width, limits, eos, cancelled
        self.waiting, self.slice_s, self.prefills_per_slice = waiting, slice_s, prefills_per_slice
        self.end_on_finish = end_on_finish
        self.start, self.prefill_s = time.monotonic(), None
        self.finish: list[str | None] = [None] * len(limits)
        self.count: list[int] = [0] * len(limits)

    def _yield_now(self) -> bool:
        elapsed = time.monotonic() - self.start
        if self.prefill_s is None:
            self.prefill_s = elapsed
        return (
            self.waiting is not None
            and elapsed >= max(self.slice_s, self.prefills_per_slice * self.prefill_s)
            and self.waiting()
        )

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        step = input_ids.shape[1] - self.prompt_width
        last = input_ids[:, -1].tolist()
        preempt = self._yield_now()
        running = [row for row, f in enumerate(self.finish) if f is None]
        for row in running:
            token = last[row]
            if token in self.eos:
                self.finish[row] = "stop"
            elif step >= self.limits[row]:
                self.finish[row] = "length"
            elif self.cancelled[row].is_set():
                self.finish[row] = "cancelled"
            elif preempt:
                self.finish[row] = "preempted"
            else:
                continue
            self.count[row] = step
        if self.end_on_finish and any(self.finish[row] is not None for row in running):
            for row in running:
                if self.finish[row] is None:
                    self.finish[row], self.count[row] = "preempted", step
        return torch.tensor([f is not None for f in self.finish], device=input_ids.device)
