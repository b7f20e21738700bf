"""The engine contract: `generate(requests, sampling) -> texts`, shared by every engine.

`SamplingParams` lives in `affectreason.decoding`; it is imported here because the contract names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from affectreason.decoding import SamplingParams
from affectreason.media import Clip

__all__ = ["ALL_MODALITIES", "Engine", "Request", "SamplingParams"]

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


class Engine(Protocol):
    name: str
    model_id: str

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[str]:
        """One text per request (or `num_return_sequences` per request, flattened in request order)."""
        ...
