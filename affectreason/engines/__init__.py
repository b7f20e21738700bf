"""Engines turn (clip, prompt) requests into text: `hf` in process, `vllm` offline, `openai` over HTTP."""

from affectreason.engines.factory import ENGINES, EngineOptions, create_engine

__all__ = ["ENGINES", "EngineOptions", "create_engine"]
