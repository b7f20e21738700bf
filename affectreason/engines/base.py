"""The engine contract: `generate(requests, sampling) -> texts`, shared by every engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from affectreason.media import Clip

ALL_MODALITIES: frozenset[str] = frozenset({"video", "audio", "text"})


@dataclass
class Request:
    """One generation request: a decoded clip, the user prompt, and the modalities the model may see.

    `modalities` drives ablations: without "video" no frames reach the model, without "audio" no audio,
    without "text" no transcript. The backbone decides how each is fed (native or textualised).
    """

    clip: Clip
    prompt: str
    modalities: frozenset[str] = field(default_factory=lambda: ALL_MODALITIES)
    adapter: str | None = None


@dataclass
class SamplingParams:
    """Decoding parameters: greedy (temperature 0) by default."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int | None = None
    num_return_sequences: int = 1

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class Engine(Protocol):
    name: str
    model_id: str

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[str]:
        """One text per request (or `num_return_sequences` per request, flattened in request order)."""
        ...
