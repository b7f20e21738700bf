"""Engines by name: `create_engine("hf" | "vllm" | "openai", ...)`; the heavy modules load only for the one chosen."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from affectreason.engines.base import Engine
from affectreason.errors import AffectReasonError

ENGINES = ("hf", "vllm", "openai")


def create_engine(
    engine: str = "hf",
    *,
    model: str | None = None,
    adapter: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    dtype: str = "auto",
    quantization: str | None = None,
    batch_size: int = 4,
    device: str | None = None,
    trust_remote_code: bool = False,
    **engine_kwargs: Any,
) -> Engine:
    """Build an engine by name; an `endpoint` always means the OpenAI-compatible client engine."""
    if endpoint:
        engine = "openai"
    if engine in ("hf", "vllm") and adapter and not model:  # the base the adapter was trained on
        from affectreason.backbones.adapters import adapter_base

        model = adapter_base(adapter)
    if engine == "hf":
        from affectreason.backbones import DEFAULT_MODEL, load_backbone
        from affectreason.engines.hf import HFEngine

        backbone = load_backbone(
            model or DEFAULT_MODEL,
            adapter=adapter,
            dtype=dtype,
            quantization=quantization,
            device=device,
            trust_remote_code=trust_remote_code,
        )
        return HFEngine(backbone, batch_size=batch_size)
    if engine == "vllm":
        from affectreason.backbones import DEFAULT_MODEL
        from affectreason.engines.vllm import VLLMEngine

        return VLLMEngine(model or DEFAULT_MODEL, adapter=adapter, **engine_kwargs)
    if engine == "openai":
        if not endpoint:
            raise AffectReasonError("the openai engine needs --endpoint URL")
        from affectreason.engines.openai import OpenAIEngine

        return OpenAIEngine(endpoint, model=model, adapter=adapter, api_key=api_key, **engine_kwargs)
    raise AffectReasonError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class EngineOptions:
    """Which engine and model a command runs (the CLI's `--engine`, `--model`, `--adapter`, ... flags)."""

    engine: str = "hf"
    model: str | None = None
    adapter: str | None = None
    endpoint: str | None = None
    api_key: str | None = None
    dtype: str = "auto"
    quantization: str | None = None
    device: str | None = None
    trust_remote_code: bool = False

    def create(self, batch_size: int = 4) -> Engine:
        return create_engine(**asdict(self), batch_size=batch_size)
