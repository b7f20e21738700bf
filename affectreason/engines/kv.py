"""KV caches of jobs prefilled apart, decoded together: left-padded into one batch, and one row cut back out.

A job that yields keeps its own cache; when several resume in one call their caches are padded on the left to
the longest (the padded positions are masked by the attention mask), so prompts of any length share the
decoding steps without padding each other's prefill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def splittable(cache: Any) -> bool:
    """Whether rows of `cache` can be cut out and merged: a dynamic cache of plain (not sliding) layers."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)


def merge(caches: list[Any]) -> tuple[Any, list[int]]:
    """One batched cache from single-row caches, each left-padded with zeros to the longest; and the pads."""
    import torch
    from transformers.cache_utils import DynamicCache

    lengths = [c.get_seq_length() for c in caches]
    longest = max(lengths)
    pads = [longest - n for n in lengths]

    def padded(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(
            [torch.nn.functional.pad(t, (0, 0, p, 0)) for t, p in zip(tensors, pads, strict=True)]
        )

    layers = [
        (padded([c.layers[i].keys for c in caches]), padded([c.layers[i].values for c in caches]))
        for i in range(len(caches[0].layers))
    ]
    return DynamicCache(ddp_cache_data=layers), pads


def row(cache: Any, index: int, start: int, length: int) -> Any:
    """Row `index` of a batched cache as its own cache: `length` positions from `start` (past its padding)."""
    from transformers.cache_utils import DynamicCache

    end = start + length
    layers = [
        (layer.keys[index : index + 1, :, start:end], layer.values[index : index + 1, :, start:end])
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=layers)
