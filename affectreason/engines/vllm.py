"""The `vllm` engine: offline `vllm.LLM` generation, plus the pure pieces shared with `vllm serve`.

The backbone (loaded without weights, processor only) builds vLLM's offline input form for each request
(`Backbone.vllm_inputs`: chat prompt with placeholders, frames as an array, 16 kHz audio as `(array, rate)`,
`use_audio_in_video` for Qwen2.5-Omni). Adapters become `LoRARequest`s; for families whose vLLM model has no
LoRA support (Qwen3-Omni's thinker) the adapter is merged into a local checkpoint first. Everything here
except `VLLMEngine` itself runs without vllm installed, so it is unit-tested on CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from affectreason.backbones.loading import dtype_name
from affectreason.decoding import SamplingParams, vllm_sampling_kwargs
from affectreason.errors import AffectReasonError, ModelLoadError
from affectreason.request import Request

log = logging.getLogger("affectreason")

# Families whose vLLM implementation cannot apply a LoRARequest: adapters are merged before loading.
NO_VLLM_LORA = frozenset({"qwen3_omni"})


def mm_limits(native_audio: bool) -> dict[str, int]:
    """One clip per prompt: a video and, for omni models, its audio track; no images."""
    return {"image": 0, "video": 1, "audio": 1 if native_audio else 0}


def llm_kwargs(
    model: str,
    *,
    enable_lora: bool,
    native_audio: bool,
    max_lora_rank: int = 64,
    max_loras: int = 1,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    limit_mm_per_prompt: dict[str, int] | None = None,
    dtype: str = "auto",
    seed: int = 0,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM`."""
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "limit_mm_per_prompt": limit_mm_per_prompt or mm_limits(native_audio),
        "dtype": dtype_name(dtype),
        "seed": seed,
        "trust_remote_code": trust_remote_code,
        # vLLM's defaults, not the checkpoint's generation_config.json: sampling comes from SamplingParams only
        "generation_config": "vllm",
    }
    if max_model_len:
        kwargs["max_model_len"] = max_model_len
    if enable_lora:
        kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=max_loras)
    return kwargs


def adapter_rank(path: str | Path) -> int:
    """The LoRA rank in a peft adapter folder's `adapter_config.json` (vLLM's `max_lora_rank` must cover it)."""
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        raise ModelLoadError(f"'{path}' is not a peft adapter: no adapter_config.json in it")
    data = json.loads(config.read_text(encoding="utf-8"))
    ranks = [int(data.get("r") or 8), *(int(v) for v in (data.get("rank_pattern") or {}).values())]
    return max(ranks)


def lora_rank_bound(ranks: list[int]) -> int:
    """vLLM accepts max_lora_rank from a fixed set; the smallest one covering every adapter."""
    needed = max(ranks, default=8)
    for allowed in (8, 16, 32, 64, 128, 256, 320, 512):
        if allowed >= needed:
            return allowed
    raise ModelLoadError(f"LoRA rank {needed} is above vLLM's largest supported rank (512)")


def lora_requests(adapters: dict[str, str]) -> dict[str, Any]:
    """A `vllm.lora.request.LoRARequest` per named adapter (ids start at 1; 0 means no adapter in vLLM)."""
    from vllm.lora.request import LoRARequest

    return {
        name: LoRARequest(lora_name=name, lora_int_id=index, lora_path=str(Path(path).resolve()))
        for index, (name, path) in enumerate(sorted(adapters.items()), start=1)
    }


def merged_dir(model: str, adapter: str, cache: Path) -> Path:
    """Where the merge of `adapter` into `model` is kept (keyed by both, so it is reused between runs)."""
    stamp = Path(adapter) / "adapter_model.safetensors"
    key = f"{model}|{Path(adapter).resolve()}|{stamp.stat().st_mtime_ns if stamp.exists() else 0}"
    return cache / hashlib.sha256(key.encode()).hexdigest()[:16]


def merge_for_vllm(
    model: str, adapter: str, cache: Path, dtype: str = "bf16", trust_remote_code: bool = False
) -> Path:
    """Merge a LoRA adapter into its base as a plain checkpoint vLLM can load (reused when present)."""
    out = merged_dir(model, adapter, cache)
    if (out / "config.json").is_file():
        return out
    from affectreason.backbones.adapters import merge_adapter

    log.info("merging adapter %s into %s for vLLM (its model has no LoRA support) -> %s", adapter, model, out)
    return Path(merge_adapter(adapter, out, model=model, dtype=dtype, trust_remote_code=trust_remote_code))


def serve_command(
    model: str,
    *,
    served_model_name: str | None = None,
    adapters: dict[str, str] | None = None,
    native_audio: bool = True,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    tensor_parallel_size: int = 1,
    data_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    limit_mm_per_prompt: dict[str, int] | None = None,
    media_dir: str | Path | None = None,
    chat_template: str | Path | None = None,
    dtype: str = "auto",
    max_lora_rank: int | None = None,
    trust_remote_code: bool = False,
) -> list[str]:
    """The `vllm serve` argument list for the same model, adapters and limits as the in-process server.

    The client already sampled the frames it sends, so vLLM is told to keep every frame of a video part.
    """
    args = ["vllm", "serve", model, "--host", host, "--port", str(port), "--dtype", dtype_name(dtype)]
    args += ["--served-model-name", served_model_name or model]
    args += ["--tensor-parallel-size", str(tensor_parallel_size)]
    if data_parallel_size > 1:
        args += ["--data-parallel-size", str(data_parallel_size)]
    args += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    args += ["--limit-mm-per-prompt", json.dumps(limit_mm_per_prompt or mm_limits(native_audio))]
    args += ["--media-io-kwargs", json.dumps({"video": {"num_frames": -1}})]
    # A request's unset fields fall back to vLLM's neutral defaults, not the checkpoint's sampling knobs.
    args += ["--generation-config", "vllm"]
    if max_model_len:
        args += ["--max-model-len", str(max_model_len)]
    if adapters:
        rank = max_lora_rank or lora_rank_bound([adapter_rank(p) for p in adapters.values()])
        args += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", str(len(adapters))]
        args += ["--lora-modules", *(f"{name}={Path(path).resolve()}" for name, path in adapters.items())]
    if media_dir:
        args += ["--allowed-local-media-path", str(Path(media_dir).resolve())]
    if chat_template:
        args += ["--chat-template", str(chat_template)]
    if api_key:
        args += ["--api-key", api_key]
    if trust_remote_code:
        args.append("--trust-remote-code")
    return args


def vllm_available() -> bool:
    """Whether vllm can be imported (it is an optional extra: `pip install -e ".[vllm]"`)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMEngine:
    """Offline generation with `vllm.LLM`; every request uses the engine's adapter unless it names its own."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        limit_mm_per_prompt: dict[str, int] | None = None,
        dtype: str = "auto",
        max_lora_rank: int | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        merge_cache: str | Path | None = None,
    ) -> None:
        if data_parallel_size > 1:
            raise AffectReasonError(
                "offline vLLM runs one replica per process: for data parallelism start "
                "`affectreason serve --engine vllm --data-parallel-size N` and describe with --endpoint, "
                "or shard the run with --shard i/n"
            )
        if not vllm_available():
            raise AffectReasonError('the vllm engine needs vllm: pip install -e ".[vllm]" (on a GPU machine)')
        from vllm import LLM

        from affectreason.backbones import load_backbone
        from affectreason.backbones.adapters import parse_adapters

        self.model_id = model
        self.backbone = load_backbone(model, trust_remote_code=trust_remote_code, load_model=False)
        adapters = parse_adapters([adapter] if adapter else [])
        for path in adapters.values():
            adapter_rank(path)  # a clear error before vLLM starts
        weights = model
        if adapters and self.backbone.family in NO_VLLM_LORA:
            cache = Path(merge_cache or Path.home() / ".cache" / "affectreason" / "merged")
            adapter_path = next(iter(adapters.values()))
            weights = str(merge_for_vllm(model, adapter_path, cache, trust_remote_code=trust_remote_code))
            adapters = {}
        self.adapter = adapter
        self._loras = lora_requests(adapters) if adapters else {}
        self._default = next(iter(self._loras), None)
        rank = max_lora_rank or lora_rank_bound([adapter_rank(p) for p in adapters.values()])
        self.llm = LLM(
            **llm_kwargs(
                weights,
                enable_lora=bool(adapters),
                native_audio=self.backbone.native_audio,
                max_lora_rank=rank,
                max_loras=max(1, len(adapters)),
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                limit_mm_per_prompt=limit_mm_per_prompt,
                dtype=dtype,
                seed=seed,
                trust_remote_code=trust_remote_code,
            )
        )

    def _lora(self, request: Request) -> Any:
        name = request.adapter or self._default
        if name is None:
            return None
        if name not in self._loras:
            raise AffectReasonError(
                f"adapter '{name}' is not loaded: loaded are {', '.join(self._loras) or 'none'}"
            )
        return self._loras[name]

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[str]:
        if not requests:
            return []
        from vllm import SamplingParams as VLLMSamplingParams

        inputs = [self.backbone.vllm_inputs(r) for r in requests]
        loras = [self._lora(r) for r in requests]
        outputs = self.llm.generate(
            inputs,
            VLLMSamplingParams(**vllm_sampling_kwargs(sampling)),
            lora_request=loras if any(loras) else None,
            use_tqdm=False,
        )
        return [choice.text for output in outputs for choice in output.outputs]
