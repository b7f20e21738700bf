"""Batching model inputs: pad per-sample processor features into one batch, and mask training labels to the
assistant response (+ eos). Used by `Backbone.collate` / `Backbone.build_inputs`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature

IGNORE_INDEX = -100
# Per-token keys, padded on the batch's padding side (everything else is concatenated or zero-padded on the right).
TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


def pad_tokens(ids: torch.Tensor, length: int, fill: int, side: str) -> torch.Tensor:
    import torch

    pad = torch.full((ids.shape[0], length - ids.shape[1]), fill, dtype=ids.dtype)
    return torch.cat([pad, ids] if side == "left" else [ids, pad], dim=1)


def collate_features(
    samples: list[BatchFeature], pad_token_id: int, pad_keys: frozenset[str], padding_side: str
) -> BatchFeature:
    """Token keys padded to the longest row on `padding_side` (`input_ids` with `pad_token_id`); tensors in
    `pad_keys` zero-padded on their trailing dimension; other tensors concatenated, lists joined."""
    import torch
    from transformers import BatchFeature

    length = max(s["input_ids"].shape[1] for s in samples)
    data: dict[str, Any] = {}
    for key in dict.fromkeys(k for s in samples for k in s.keys()):
        values = [s[key] for s in samples if key in s]
        if key in TOKEN_KEYS:
            fill = pad_token_id if key == "input_ids" else 0
            data[key] = torch.cat([pad_tokens(v, length, fill, padding_side) for v in values])
        elif isinstance(values[0], torch.Tensor):
            if key in pad_keys:
                width = max(v.shape[-1] for v in values)
                values = [torch.nn.functional.pad(v, (0, width - v.shape[-1])) for v in values]
            data[key] = torch.cat(values)
        else:
            data[key] = [item for v in values for item in v]
    return BatchFeature(data)


def response_labels(
    tokenizer: Any, batch: BatchFeature, texts: list[str], responses: list[str]
) -> torch.Tensor:
    """Label the last tokens of each row: as many as the response + eos adds to the unexpanded chat text.

    Placeholders expand by the same amount with and without the response, so counting on the
    unexpanded text is exact, and a token merged across the prompt/response boundary stays labelled.
    """
    import torch

    ids, mask = batch["input_ids"], batch["attention_mask"]
    labels = torch.full_like(ids, IGNORE_INDEX)
    eos = tokenizer.eos_token
    for row, (text, response) in enumerate(zip(texts, responses, strict=True)):
        full = tokenizer(text + response + eos, add_special_tokens=False)["input_ids"]
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        positions = mask[row].nonzero().flatten()
        span = positions[len(positions) - (len(full) - len(prompt)) :]
        labels[row, span] = ids[row, span]
    return labels
