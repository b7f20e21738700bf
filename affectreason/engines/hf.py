"""The in-process transformers engine: batched `generate` on a loaded Backbone (the embedded default)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from affectreason.backbones.base import Backbone
from affectreason.decoding import SamplingParams, hf_generation_config
from affectreason.engines.base import Request
from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    import torch


class HFEngine:
    """Greedy or sampled decoding with `model.generate`, batched across clips (left padding)."""

    name = "hf"

    def __init__(self, backbone: Backbone, batch_size: int = 4) -> None:
        if backbone.model is None:
            raise AffectReasonError("the hf engine needs a backbone loaded with its model weights")
        if batch_size < 1:
            raise AffectReasonError(f"batch size must be at least 1, got {batch_size}")
        self.backbone = backbone
        self.batch_size = batch_size
        self.model_id = backbone.model_id

    def batches(self, requests: list[Request]) -> list[list[int]]:
        """Request indices grouped into batches of compatible layouts, at most `batch_size` each."""
        groups: dict[Any, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[self.backbone.batch_key(request)].append(index)
        return [
            indices[start : start + self.batch_size]
            for indices in groups.values()
            for start in range(0, len(indices), self.batch_size)
        ]

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[str]:
        """One text per request (`num_return_sequences` per request, flattened in request order)."""
        decode = self.backbone.tokenizer.batch_decode
        return decode(
            [ids.tolist() for ids in self.generate_ids(requests, sampling)], skip_special_tokens=True
        )

    def generate_ids(self, requests: list[Request], sampling: SamplingParams) -> list[torch.Tensor]:
        """The new token ids of each sequence (padding after eos included), in `generate`'s order."""
        import torch

        if sampling.greedy and sampling.num_return_sequences > 1:
            raise AffectReasonError("several return sequences need sampling: set a temperature above 0")
        sequences: list[list[torch.Tensor]] = [[] for _ in requests]
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            for indices in self.batches(requests):
                outputs = self._generate_batch([requests[i] for i in indices], sampling)
                n = sampling.num_return_sequences
                for position, index in enumerate(indices):
                    sequences[index] = outputs[position * n : (position + 1) * n]
        return [seq for group in sequences for seq in group]

    def _rng_devices(self) -> list[int]:
        device = self.backbone.device
        return [device.index or 0] if device.type == "cuda" else []

    def _generate_batch(self, requests: list[Request], sampling: SamplingParams) -> list[torch.Tensor]:
        backbone = self.backbone
        inputs = backbone.to_model(backbone.build_inputs(requests))
        config = hf_generation_config(
            sampling, backbone.model.generation_config, backbone.suppress_token_ids()
        )
        if backbone.tokenizer.pad_token_id is not None:  # the padding build_inputs used
            config.pad_token_id = backbone.tokenizer.pad_token_id
        output = backbone.model.generate(**inputs, **backbone.generation_kwargs(), generation_config=config)
        return list(output[:, inputs["input_ids"].shape[1] :].cpu())
