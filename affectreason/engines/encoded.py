"""Vision encoder outputs made before the prefill, and joined for a batch.

transformers' `generate` runs a multimodal model's `get_video_features` / `get_image_features` before the
prefill and hands the outputs to `forward` as `mm_encoder_outputs`. The engine runs that step per job and
passes the outputs in the same argument, so the step can run elsewhere: on a CPU device the server's media
worker processes run it on the model's shared weights, beside generation, and the generation thread only
prefills the language model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature

    from affectreason.backbones import Backbone

# the raw pixel input of each modality whose encoder output `forward` accepts instead
PIXEL_KEYS = {"image": "pixel_values", "video": "pixel_values_videos"}


def supported(model: Any) -> bool:
    """Whether the model's `forward` takes precomputed vision encoder outputs."""
    return "mm_encoder_outputs" in inspect.signature(model.forward).parameters


def encode(backbone: Backbone, features: BatchFeature) -> dict[str, Any]:
    """The vision encoder outputs of one job's processed inputs, by modality (run by the backbone's model)."""
    import torch

    inputs = backbone.to_model(type(features)(dict(features)))  # a copy: to_model casts in place
    encoded = {}
    with torch.inference_mode():
        for modality, pixels in PIXEL_KEYS.items():
            encoder = getattr(backbone.model, f"get_{modality}_features", None)
            if encoder is None or pixels not in inputs:
                continue
            names = inspect.signature(encoder).parameters
            encoded[modality] = encoder(**{k: v for k, v in inputs.items() if k in names}, return_dict=True)
    return encoded


def without_pixels(features: BatchFeature) -> BatchFeature:
    """The inputs whose pixels the encoder outputs replace."""
    return type(features)({k: v for k, v in features.items() if k not in PIXEL_KEYS.values()})


def join(encoded: list[dict[str, Any]]) -> dict[str, Any]:
    """One batch's encoder outputs from its rows', in row order. The vision towers pack every clip of a batch
    into one sequence: tensors join on their first axis, per-clip tuples chain, and per-layer lists (deepstack
    features) join layer by layer."""
    joined = {}
    for modality in PIXEL_KEYS:
        outputs = [e[modality] for e in encoded if modality in e]  # rows without this modality add nothing
        if outputs:
            joined[modality] = _joined(outputs)
    return joined


@dataclass(frozen=True)
class Packed:
    """A tensor as a numpy array and its dtype's name (bfloat16 travels as its 16 bits: numpy has no bfloat16)."""

    array: np.ndarray
    dtype: str

    @classmethod
    def of(cls, tensor: torch.Tensor) -> Packed:
        import torch

        bits = tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor
        return cls(bits.numpy(), str(tensor.dtype).removeprefix("torch."))

    def tensor(self) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.array).view(getattr(torch, self.dtype))


def to_numpy(outputs: dict[str, Any]) -> dict[str, Any]:
    """Encoder outputs with numpy arrays for tensors, to cross processes as plain pickles."""
    return {modality: _mapped(value, Packed.of) for modality, value in outputs.items()}


def from_numpy(outputs: dict[str, Any]) -> dict[str, Any]:
    """Encoder outputs from `to_numpy`, with tensors again."""
    return {modality: _mapped(value, Packed.tensor, Packed) for modality, value in outputs.items()}


def _mapped(value: Any, convert: Any, leaf: type | None = None) -> Any:
    """`value` with `convert` applied to each tensor (or each `leaf`) inside its outputs, tuples and lists."""
    import torch

    if isinstance(value, leaf or torch.Tensor):
        return convert(value)
    if isinstance(value, tuple | list):
        return type(value)(_mapped(v, convert, leaf) for v in value)
    if hasattr(value, "keys"):  # a model output
        return type(value)(**{key: _mapped(value[key], convert, leaf) for key in value.keys()})
    return value


def _joined(values: list[Any]) -> Any:
    import torch

    first = values[0]
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        return torch.cat(values)
    if isinstance(first, tuple):
        return tuple(part for value in values for part in value)
    if isinstance(first, list):
        return [_joined(list(layer)) for layer in zip(*values, strict=True)]
    if hasattr(first, "keys"):  # a model output
        return type(first)(**{key: _joined([v[key] for v in values]) for key in first.keys()})
    raise TypeError(f"cannot join encoder outputs of type {type(first).__name__}")
