"""The engine contract: `generate(requests, sampling) -> texts`, shared by every engine.

`Request` (`affectreason.request`) and `SamplingParams` (`affectreason.decoding`) are light-layer core types;
they are re-exported here because the contract names them.
"""

from __future__ import annotations

from typing import Protocol

from affectreason.decoding import SamplingParams
from affectreason.request import ALL_MODALITIES, Request

__all__ = ["ALL_MODALITIES", "Engine", "Request", "SamplingParams"]


class Engine(Protocol):
    name: str
    model_id: str

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[str]:
        """One text per request (or `num_return_sequences` per request, flattened in request order)."""
        ...
