"""Per-row decoding hooks for `model.generate`, so requests with their own seeds and token limits share a
batch: a logits processor that samples each row with its own generator, and a per-row stopping criterion."""

from __future__ import annotations

import threading

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper


class RowSampler(LogitsProcessor):
    """Temperature and top-p (transformers' own warpers), then one token drawn per row from that row's own
    generator; every other token is masked, so greedy selection takes the drawn one. Run with do_sample=False."""

    def __init__(self, temperature: float, top_p: float, seeds: list[int], device: torch.device):
        warpers = [TemperatureLogitsWarper(temperature)]
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        self.warpers = LogitsProcessorList(warpers)
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(self.warpers(input_ids, scores).float(), dim=-1)
        drawn = torch.cat(
            [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators, strict=True)]
        )
        masked = torch.full_like(scores, float("-inf"))
        return masked.scatter_(1, drawn[:, None], 0.0)


class RowStops(StoppingCriteria):
    """Ends each row at its own eos, its own token limit, or when its request is cancelled, and records which
    (`finish`: stop / length / cancelled) and after how many new tokens (`count`)."""

    def __init__(self, prompt_width: int, limits: list[int], eos: set[int], cancelled: list[threading.Event]):
        self.prompt_width, self.limits, self.eos, self.cancelled = prompt_width, limits, eos, cancelled
        self.finish: list[str | None] = [None] * len(limits)
        self.count: list[int] = [0] * len(limits)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        step = input_ids.shape[1] - self.prompt_width
        last = input_ids[:, -1].tolist()
        for row, token in enumerate(last):
            if self.finish[row] is not None:
                continue
            if token in self.eos:
                self.finish[row] = "stop"
            elif step >= self.limits[row]:
                self.finish[row] = "length"
            elif self.cancelled[row].is_set():
                self.finish[row] = "cancelled"
            else:
                continue
            self.count[row] = step
        return torch.tensor([f is not None for f in self.finish], device=input_ids.device)
