"""The Backbone interface: a model family's loading, input building, LoRA targets, suppression and vLLM form.

Shared logic lives here: turning `Request`s into chat messages (modality ablations, transcript, textualised
audio for video-only families) and the family registry. Padding a batch and masking training labels to the
assistant response are in `backbones.batching`. Families override a few hooks: which content parts and media
a request becomes, and how the processor is called.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from affectreason.backbones.batching import TOKEN_KEYS, collate_features, response_labels
from affectreason.errors import AffectReasonError, ModelLoadError
from affectreason.request import Request

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature

DEFAULT_MODEL = "Qwen/Qwen2.5-Omni-3B"

# bitsandbytes' CPU backend warns on every import (peft imports it) that an optional hub kernel is missing;
# it falls back to its own kernel, so the line is noise for our users.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

# Every other module of this package is a model family (one file each), imported when a family is looked up.
_NOT_FAMILIES = frozenset({"adapters", "base", "batching", "loading", "omni", "tiny"})

# LoRA on the language model's attention and MLP projections only: a bare list of names such as
# `q_proj` would also adapt the vision and audio towers, which reuse those names.
LANGUAGE_MODEL_ATTENTION = r".*language_model\.layers\.\d+\.self_attn\.(q|k|v|o)_proj"
LANGUAGE_MODEL_LINEAR = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
_REGISTRY: dict[str, type[Backbone]] = {}


@dataclass
class Media:
    """What one request hands the processor: frames, audio, and how they are laid out in the message."""

    parts: list[dict[str, str]]
    frames: np.ndarray | None = None
    fps: float | None = None
    audio: np.ndarray | None = None
    audio_in_video: bool = False
    duration: float = 0.0


def clip_fps(times: np.ndarray, duration: float) -> float:
    """The effective frame rate of sampled frames (temporal position ids depend on it)."""
    if len(times) > 1 and times[-1] > times[0]:
        return float((len(times) - 1) / (times[-1] - times[0]))
    return float(len(times) / duration) if duration > 0 else 1.0


class Backbone(ABC):
    """One loaded model family: model + processor and everything that differs between families."""

    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    native_audio: ClassVar[bool]
    audio_window_seconds: ClassVar[float | None] = None
    lora_target_modules: ClassVar[str]
    model_class: ClassVar[str]  # the transformers class that loads the weights
    # Where the towers live, from the start of the module name (bitsandbytes skip list, tower lookup).
    tower_paths: ClassVar[dict[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for model_type in getattr(cls, "model_types", ()):
            _REGISTRY[model_type] = cls

    def __init__(self, model: Any, processor: Any, model_id: str, adapter: str | None = None) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.adapter = adapter

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def dtype(self) -> torch.dtype | None:
        return None if self.model is None else self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---- messages -------------------------------------------------------------------------------------

    def text_parts(self, request: Request) -> list[dict[str, str]]:
        """The transcript (when allowed) and, for video-only families, the textualised audio, then the prompt."""
        clip, lines = request.clip, []
        if "text" in request.modalities and clip.transcript:
            lines.append(f'Transcript: "{clip.transcript.strip()}"')
        if not self.native_audio and "audio" in request.modalities and clip.has_audio:
            from affectreason.acoustics import describe_acoustics

            lines.append(f"Audio: {describe_acoustics(clip.audio, clip.sample_rate)}")
        lines.append(request.prompt)
        return [{"type": "text", "text": "\n".join(lines)}]

    def media(self, request: Request) -> Media:
        """Content parts and media for one request; video-only families pass frames only."""
        clip = request.clip
        parts: list[dict[str, str]] = []
        frames = fps = None
        if "video" in request.modalities and clip.has_video:
            parts.append({"type": "video"})
            frames, fps = clip.frames, clip_fps(clip.frame_times, clip.duration)
        return Media(parts=parts + self.text_parts(request), frames=frames, fps=fps, duration=clip.duration)

    def prompt_text(self, request: Request) -> str:
        """The chat-formatted prompt with one unexpanded placeholder per medium, ending in the generation prompt."""
        messages = [{"role": "user", "content": self.media(request).parts}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def batch_key(self, request: Request) -> Hashable:
        """Requests with equal keys may share a batch (omni models cannot mix audio-in-video layouts)."""
        return None

    # ---- model inputs -----------------------------------------------------------------------------------

    @abstractmethod
    def process_one(self, text: str, media: Media) -> BatchFeature:
        """Run the processor on one chat text and its media (`return_tensors="pt"`, batch of one)."""

    # Keys whose trailing dimension may differ between samples and is zero-padded when batching.
    pad_keys: ClassVar[frozenset[str]] = frozenset()
    _TOKEN_KEYS = TOKEN_KEYS

    def process(self, texts: list[str], media: list[Media], padding_side: str) -> BatchFeature:
        """Process each sample on its own (per-clip frame rate and size) and collate into one padded batch."""
        return self.collate([self.process_one(t, m) for t, m in zip(texts, media, strict=True)], padding_side)

    def collate(self, samples: list[BatchFeature], padding_side: str) -> BatchFeature:
        """One padded batch of per-sample features (families with extra media layouts override)."""
        return collate_features(samples, self.tokenizer.pad_token_id, self.pad_keys, padding_side)

    def build_inputs(self, requests: list[Request], responses: list[str] | None = None) -> BatchFeature:
        """Batched model inputs: left-padded generation prompts, or training batches with masked `labels`.

        With `responses`, each text is the prompt plus the response plus the end-of-turn (eos) token, and
        `labels` is -100 everywhere except on those response + eos tokens.
        """
        if not requests:
            raise AffectReasonError("build_inputs needs at least one request")
        if responses is not None and len(responses) != len(requests):
            raise AffectReasonError(f"got {len(responses)} responses for {len(requests)} requests")
        if responses is None:
            return self.collate(self.prompt_features(requests), "left")
        media = self.align_batch([self.media(r) for r in requests])
        texts = [self._chat_text(m) for m in media]
        eos = self.tokenizer.eos_token
        batch = self.process(
            [t + r + eos for t, r in zip(texts, responses, strict=True)], media, padding_side="right"
        )
        batch["labels"] = self._labels(batch, texts, responses)
        return batch

    def prompt_features(self, requests: list[Request]) -> list[BatchFeature]:
        """Each request's generation-prompt inputs on its own, media layouts aligned across all of them.

        Any subset of the result collates into a valid batch, so a trainer may regroup the rows freely.
        """
        media = self.align_batch([self.media(r) for r in requests])
        return [self.process_one(self._chat_text(m), m) for m in media]

    def _chat_text(self, media: Media) -> str:
        messages = [{"role": "user", "content": media.parts}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def to_model(self, batch: BatchFeature) -> BatchFeature:
        """The batch on the model's device, floating tensors (pixels, audio features) in the model's dtype."""
        import torch

        device, dtype = self.device, self.dtype
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                batch[key] = value.to(device, dtype=dtype if value.is_floating_point() else None)
        return batch

    def align_batch(self, media: list[Media]) -> list[Media]:
        """Make a batch's media layouts compatible with each other (omni models override)."""
        return media

    def _labels(self, batch: BatchFeature, texts: list[str], responses: list[str]) -> torch.Tensor:
        return response_labels(self.tokenizer, batch, texts, responses)

    def video_kwargs(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        """Processor video kwargs that keep the clip loader's frames as they are: no resampling, no resizing."""
        return {
            "fps": fps,
            "do_sample_frames": False,
            "size": self.frame_size_kwargs([frames]),
            "cap_pixels_per_frame": False,  # the clip loader already chose the resolution
        }

    def frame_size_kwargs(self, frames: list[np.ndarray]) -> dict[str, int]:
        """Pixel limits that keep the clip's own resolution (the processor's defaults would resize it)."""
        factor = self.vision_factor()
        largest = max(int(f.shape[1] * f.shape[2]) for f in frames)
        return {"shortest_edge": factor * factor * 4, "longest_edge": max(largest, factor * factor * 4)}

    def vision_factor(self) -> int:
        video = self.processor.video_processor
        return int(video.patch_size * video.merge_size)

    # ---- generation, LoRA, towers, vLLM --------------------------------------------------------------------

    def generation_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for `model.generate` / forward."""
        return {}

    def suppress_token_ids(self) -> list[int]:
        """Placeholder and media delimiter tokens that must never be sampled, read from the tokenizer."""
        tokenizer = self.tokenizer
        ids = set()
        for name in self.placeholder_token_names():
            token = getattr(self.processor, name, None) or getattr(tokenizer, name, None)
            if isinstance(token, str):
                token_id = tokenizer.convert_tokens_to_ids(token)
                if token_id is not None and token_id != tokenizer.unk_token_id:
                    ids.add(int(token_id))
        return sorted(ids)

    def placeholder_token_names(self) -> tuple[str, ...]:
        return ("image_token", "video_token", "audio_token")

    def lora_exclude_modules(self, towers: Collection[str] | None = None) -> str | None:
        """A regex of the towers (all, or those named) for peft's `exclude_modules`, beside `lora_target_modules`.

        peft rewrites a regex `target_modules` into bare leaf names for MoE models (Qwen3-Omni), which would
        reach the towers' `q_proj`/`k_proj`; the exclusion keeps LoRA off the frozen towers regardless.
        """
        paths = [path for name, path in self.tower_paths.items() if towers is None or name in towers]
        if not paths:
            return None
        return rf"(?:.*\.)?(?:{'|'.join(re.escape(path) for path in paths)})\..*"

    def tower_modules(self) -> dict[str, torch.nn.Module]:
        """The encoders feeding the language model, by modality (tests hook them to count calls)."""
        root = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return {name: root.get_submodule(path) for name, path in self.tower_paths.items()}

    def vllm_inputs(self, request: Request) -> dict[str, Any]:
        """vLLM's offline input form: the chat prompt with placeholders plus the raw media."""
        media = self.media(request)
        data: dict[str, Any] = {}
        if media.frames is not None:
            data["video"] = media.frames
        if media.audio is not None:
            data["audio"] = (media.audio, request.clip.sample_rate)
        out: dict[str, Any] = {"prompt": self.prompt_text(request), "multi_modal_data": data}
        kwargs = self.vllm_processor_kwargs(media)
        if kwargs:
            out["mm_processor_kwargs"] = kwargs
        return out

    def vllm_processor_kwargs(self, media: Media) -> dict[str, Any]:
        """The HF path's video kwargs (frame rate, no resampling, the clip's own size), so vLLM sees the same frames.

        `cap_pixels_per_frame` is left out: the transformers vLLM pins may not know it.
        """
        if media.frames is None:
            return {}
        kwargs = self.video_kwargs(media.frames, media.fps)
        return {key: kwargs[key] for key in ("fps", "do_sample_frames", "size")}


def backbone_class_for(model_type: str) -> type[Backbone]:
    """The Backbone family registered for a config's `model_type`."""
    package = importlib.import_module("affectreason.backbones")
    for module in pkgutil.iter_modules(
        package.__path__
    ):  # each family module registers its classes on import
        if module.name not in _NOT_FAMILIES:
            importlib.import_module(f"affectreason.backbones.{module.name}")
    if model_type not in _REGISTRY:
        raise ModelLoadError(
            f"unsupported model type '{model_type}': supported are {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[model_type]
