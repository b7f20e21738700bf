"""KV caches of jobs prefilled apart, decoded together: left-padded into one batch with room for the tokens to
come, one row cut back out, and the rope offsets the multimodal models keep beside them.

A job that yields keeps its own cache; when several resume in one call their caches are padded on the left to
the longest (the padded positions are masked by the attention mask), so prompts of any length share the
decoding steps without padding each other's prefill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers.cache_utils import DynamicCache, DynamicLayer

if TYPE_CHECKING:
    import torch


class ReservedLayer(DynamicLayer):
    """A dynamic cache layer that writes each step into room reserved after its positions. `DynamicLayer`
    concatenates, copying every cached position at every step: for a batch of long prompts that copy costs
    more than the step itself. `keys` and `values` stay views of the reserved tensors, so everything that reads
    or crops a `DynamicLayer` works unchanged."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        super().__init__()
        self.lazy_initialization(keys, values)
        self.room = max(1, room)
        self._reserve(keys, values, keys.shape[-2] + self.room)

    def _reserve(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        """Copy the cached positions into new tensors of `capacity` positions; `keys` and `values` view them."""
        length = keys.shape[-2]
        reserved = []
        for states in (keys, values):
            tensor = states.new_empty((*states.shape[:-2], capacity, states.shape[-1]))
            tensor[..., :length, :] = states
            reserved.append(tensor)
        self._reserved = (reserved[0], reserved[1])
        self.keys, self.values = reserved[0][..., :length, :], reserved[1][..., :length, :]

    def _fits(self, end: int) -> bool:
        """Whether `keys` is still a prefix view of the reserved tensors (a crop keeps it one; a batch selection
        copies) and `end` positions fit."""
        reserved = self._reserved[0]
        return (
            self.keys.data_ptr() == reserved.data_ptr()
            and self.keys.shape[:-2] == reserved.shape[:-2]
            and end <= reserved.shape[-2]
        )

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = self.keys.shape[-2]
        end = length + key_states.shape[-2]
        if not self._fits(end):
            self._reserve(self.keys, self.values, end + self.room)
        keys, values = self._reserved
        keys[..., length:end, :] = key_states
        values[..., length:end, :] = value_states
        self.keys, self.values = keys[..., :end, :], values[..., :end, :]
        return self.keys, self.values


def splittable(cache: Any) -> bool:
    """Whether rows of `cache` can be cut out and merged: a dynamic cache of plain (not sliding) layers."""
    return isinstance(cache, DynamicCache) and all(
        type(layer) in (DynamicLayer, ReservedLayer) for layer in cache.layers
    )


def merge(caches: list[Any], room: int) -> tuple[Any, list[int]]:
    """One batched cache from single-row caches, each left-padded with zeros to the longest, with `room` positions
    reserved for the tokens to come; and the pads."""
    import torch

    lengths = [c.get_seq_length() for c in caches]
    longest = max(lengths)
    pads = [longest - n for n in lengths]

    def padded(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(
            [torch.nn.functional.pad(t, (0, 0, p, 0)) for t, p in zip(tensors, pads, strict=True)]
        )

    merged = DynamicCache()
    merged.layers = [
        ReservedLayer(
            padded([c.layers[i].keys for c in caches]), padded([c.layers[i].values for c in caches]), room
        )
        for i in range(len(caches[0].layers))
    ]
    return merged, pads


def row(cache: Any, index: int, start: int, length: int) -> Any:
    """Row `index` of a batched cache as its own cache: `length` positions from `start` (past its padding)."""
    end = start + length
    layers = [
        (layer.keys[index : index + 1, :, start:end], layer.values[index : index + 1, :, start:end])
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=layers)


def rope_offsets(model: Any) -> dict[str, Any]:
    """The rope offsets the multimodal models keep between generation steps (`rope_deltas`), by module name."""
    return {name: m.rope_deltas for name, m in model.named_modules() if hasattr(m, "rope_deltas")}


def set_rope_offsets(model: Any, offsets: dict[str, Any] | None) -> None:
    """Put a preempted job's rope offsets back: another job's generation has overwritten them since."""
    modules = dict(model.named_modules())
    for name, value in (offsets or {}).items():
        modules[name].rope_deltas = value


def cache_argument() -> str:
    """What `generate` calls the KV cache, in its arguments and its output: `cache` from transformers 5.2x on,
    `past_key_values` before."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return "cache" if "cache" in GenerateDecoderOnlyOutput.__dataclass_fields__ else "past_key_values"
