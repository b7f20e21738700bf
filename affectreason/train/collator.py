"""The multimodal collator shared by SFT, DPO and GRPO: dataset rows -> decoded clips -> backbone model inputs.

Rows are plain dicts with `video` and/or `audio` (absolute paths), optional `subtitle`, and for supervised
batches a response column (`target` by default). Media is decoded here with `load_clip`, so with
`num_workers > 0` decoding runs inside the dataloader worker processes. The batch itself comes from
`Backbone.build_inputs`: the chat template, the processor call with the family's kwargs (audio-in-video for
the omni thinkers) and, for supervised batches, `labels` masked to the assistant response.

Reuse:
- SFT: `MultimodalCollator(backbone, data)(rows)` -> training batch with `labels`.
- DPO: `collator.requests(rows)` once, then `collator.batch(requests, chosen)` and `collator.batch(requests,
  rejected)`, so each clip is decoded once per pair.
- GRPO: `MultimodalCollator(backbone, data, response_key=None)(rows)` -> left-padded generation batch.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from affectreason.errors import AffectReasonError
from affectreason.media import Clip, load_clip
from affectreason.request import Request

if TYPE_CHECKING:
    from affectreason.backbones import Backbone
    from affectreason.train.sections import DataSection

# Sequence-shaped keys cut together when a batch is truncated to `max_length`.
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "token_type_ids")


def load_row_clip(row: dict[str, Any], data: DataSection) -> Clip:
    """Decode one dataset row with the recipe's sampling; a separate `audio` file replaces the video's track."""
    video, audio = row.get("video"), row.get("audio")
    transcript = row.get("subtitle") or None
    if not video and not audio:
        raise AffectReasonError(f"row {row.get('id', '?')}: no video or audio path")
    sampling = dict(frames=data.frames, fps=data.fps, max_frames=data.max_frames, max_pixels=data.max_pixels)
    if not video:
        return load_clip(audio, frames=None, fps=None, transcript=transcript)
    clip = load_clip(video, audio=not audio, transcript=transcript, **sampling)
    if audio:
        track = load_clip(audio, frames=None, fps=None)
        clip = dataclasses.replace(clip, audio=track.audio, sample_rate=track.sample_rate)
    return clip


class MultimodalCollator:
    """Callable `data_collator` for trl trainers; see the module docstring for the three uses."""

    def __init__(
        self,
        backbone: Backbone,
        data: DataSection,
        *,
        prompt: str | None = None,
        response_key: str | None = "target",
        max_length: int | None = None,
    ) -> None:
        from affectreason.prompts import load_prompt

        self.backbone = backbone
        self.data = data
        self.prompt = prompt if prompt is not None else load_prompt(data.prompt).text
        self.response_key = response_key
        self.max_length = max_length

    def requests(self, rows: list[dict[str, Any]]) -> list[Request]:
        return [Request(clip=load_row_clip(row, self.data), prompt=self.prompt) for row in rows]

    def batch(self, requests: list[Request], responses: list[str] | None = None) -> dict[str, Any]:
        """Model inputs for decoded requests: a training batch when `responses` are given, else a prompt batch."""
        batch = dict(self.backbone.build_inputs(requests, responses=responses))
        if responses is not None and self.max_length is not None:
            batch = self._truncate(batch)
        return batch

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        responses = None if self.response_key is None else [str(row[self.response_key]) for row in rows]
        return self.batch(self.requests(rows), responses)

    def _truncate(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Cut the tail of long training sequences; refuse a cut into media placeholder tokens."""
        length = batch["input_ids"].shape[1]
        if length <= self.max_length:
            return batch
        tail = batch["input_ids"][:, self.max_length :]
        media_ids = set(self.backbone.suppress_token_ids())
        if any(int(t) in media_ids for t in tail.flatten().tolist()):
            raise AffectReasonError(
                f"max_length={self.max_length} cuts into the media tokens of a {length}-token sample; "
                "raise it or lower data.frames / data.max_pixels"
            )
        for key in _SEQUENCE_KEYS:
            if key in batch:
                batch[key] = batch[key][:, : self.max_length]
        return batch
