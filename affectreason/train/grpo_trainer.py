"""trl's GRPOTrainer extended so a clip's video, audio-in-video and transcript reach every pass.

trl's GRPO knows images only: given a video it would sample with it (at best) and then score the policy and the
reference without it. This subclass changes only how model inputs are built; trl keeps the rollout, the weight
sync, the buffering of generation batches and the loss:

- `_generate_and_score_completions`: decodes the generation batch's clips once each, builds every row's prompt
  inputs with `Backbone.prompt_features` (audio-in-video layouts aligned across the batch, so a silent video
  beside a clip with sound gets a silent track) and returns them under `mm_features`, one entry per completion
  row. trl shuffles and splits that list with the rest of the batch, so each training step finds its rows'
  media in its own inputs; nothing per row is kept on the trainer, and host memory is bounded by the
  generation batch whatever the dataset size.
- `_tokenize_prompts` / `_generate_single_turn`: prompt ids come from those features; HF generation gets the
  full multimodal batch (placeholder tokens suppressed, FSDP v1 parameters summoned as trl does), and vLLM
  rollouts go through trl's own `_generate_single_turn` (weight sync, tensor-parallel gather, sleep mode,
  sampling settings) with each row's video + audio carried in trl's per-row image slot (see `MultimodalLLM`).
- `_get_per_token_logps_and_entropies`: the old-policy, reference and policy passes forward the rows' media.
- `_calculate_rewards`: also logs the within-group reward std and the parse rate, and warns when no group has
  any reward variance (every advantage is zero, so the step cannot learn).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import unwrap_model_for_generation

from affectreason.errors import AffectReasonError
from affectreason.rationale import parse_rationale
from affectreason.train.collator import MultimodalCollator

FEATURES_KEY = "mm_features"
_TOKEN_KEYS = ("mm_token_type_ids", "token_type_ids")
_BATCH_ONLY_KEYS = ("input_ids", "attention_mask", "labels")


class RewardVarianceWarning(UserWarning):
    """Every group's completions got the same reward: advantages are zero and the step does not train."""


@dataclass
class VLLMRow:
    """One row's vLLM input (chat prompt, video frames, 16 kHz audio, processor kwargs) in trl's image slot."""

    inputs: dict[str, Any]


class MultimodalLLM:
    """trl's colocated `vllm.LLM` seen through one change: a row whose image slot holds a `VLLMRow` is sent as
    that row's own multimodal input. Everything else (weight loading, sleep/wake, TP) is the engine's own."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def generate(self, prompts: list[Any], *args: Any, **kwargs: Any) -> Any:
        return self._llm.generate([vllm_prompt(p) for p in prompts], *args, **kwargs)


def vllm_prompt(row: Any) -> Any:
    """The vLLM input for one of trl's rows: ours when its image slot carries a `VLLMRow`, else trl's row."""
    image = row.get("multi_modal_data", {}).get("image") if isinstance(row, dict) else None
    return image.inputs if isinstance(image, VLLMRow) else row


def vllm_suppression(token_ids: list[int]) -> dict[str, Any]:
    """vLLM sampling kwargs that keep placeholder tokens from being sampled (HF's `suppress_tokens`)."""
    return {"logit_bias": {int(token): -100.0 for token in token_ids}} if token_ids else {}


class MultimodalGRPOTrainer(GRPOTrainer):
    """GRPO whose generation, old-policy, reference and policy passes all see the clip's video and audio."""

    def __init__(self, *args: Any, backbone: Any, collator: MultimodalCollator, **kwargs: Any) -> None:
        self.backbone = backbone
        self.collator = collator  # prompt-only (`response_key=None`): decodes rows
        self._batch: tuple[list[Any], list[dict[str, Any]]] | None = None  # during one trl hook only
        super().__init__(*args, **kwargs)
        if self.use_vllm:
            if self.vllm_generation.mode != "colocate":
                raise AffectReasonError(
                    "vLLM rollouts with video + audio need vllm_mode=colocate: trl's vLLM server takes images only"
                )
            self.vllm_generation.llm = MultimodalLLM(self.vllm_generation.llm)

    # ---- per-row multimodal inputs, carried in trl's batch ---------------------------------------------------

    def row_features(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
        """Requests and prompt features per row; a clip repeated across its group is decoded and processed once."""
        keys = [(row.get("video"), row.get("audio"), row.get("subtitle")) for row in rows]
        unique = list(dict.fromkeys(keys))
        first = {key: rows[keys.index(key)] for key in unique}
        requests = self.collator.requests([first[key] for key in unique])
        features = self.backbone.prompt_features(requests)
        index = {key: i for i, key in enumerate(unique)}
        return [requests[index[k]] for k in keys], [features[index[k]] for k in keys]

    @contextmanager
    def _carrying(self, requests: list[Any], features: list[dict[str, Any]]) -> Iterator[None]:
        self._batch = (requests, features)
        try:
            yield
        finally:
            self._batch = None

    def _collate(self, features: list[dict[str, Any]], padding_side: str) -> dict[str, Any]:
        batch = self.backbone.collate(features, padding_side)
        device = self.accelerator.device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        requests, features = self.row_features(inputs)
        with self._carrying(requests, features):
            output = super()._generate_and_score_completions(inputs)
        output[FEATURES_KEY] = features  # a list: trl shuffles and splits it with the batch's tensors
        return output

    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict]:
        _, features = self._batch
        prompt_ids = [f["input_ids"][0][f["attention_mask"][0].bool()].tolist() for f in features]
        return prompt_ids, None, {}

    # ---- generation -------------------------------------------------------------------------------------------

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        requests, features = self._batch
        if self.use_vllm:  # trl's own vLLM path, our rows in its image slot
            rows = [[VLLMRow(self.backbone.vllm_inputs(request))] for request in requests]
            return super()._generate_single_turn(prompt_ids, rows, {}, num_generations, has_tool_images)
        batch = self._collate(features, "left")
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            output = unwrapped_model.generate(
                **batch, **self.backbone.generation_kwargs(), generation_config=self.generation_config
            )
        completion_ids = output[:, batch["input_ids"].size(1) :].cpu()
        eos = torch.tensor(self.eos_token_ids)
        result = []
        for row in completion_ids:
            hits = torch.isin(row, eos).nonzero()
            result.append(row[: int(hits[0]) + 1 if len(hits) else len(row)].tolist())
        return result, None

    # ---- log-prob passes -------------------------------------------------------------------------------------------

    def _compute_loss(self, model, inputs):
        with self._carrying([], inputs[FEATURES_KEY]):
            return super()._compute_loss(model, inputs)

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **_image_inputs,  # trl's image-only fields; the rows' own media are used instead
    ):
        if self._batch is None:
            raise AffectReasonError("a GRPO log-prob pass ran outside a batch that carries its rows' media")
        features = self._batch[1]
        batch_size = batch_size or input_ids.size(0)
        prompt_width = input_ids.size(1) - logits_to_keep
        logps, entropies, aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            model_inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            for key, value in self._collate(features[start:end], "left").items():
                if key in _BATCH_ONLY_KEYS:
                    continue
                if key in _TOKEN_KEYS:  # prompt-aligned: pad to trl's prompt width, zeros over the completion
                    value = torch.nn.functional.pad(value, (prompt_width - value.size(1), logits_to_keep))
                model_inputs[key] = value
            model_inputs.update(self.backbone.generation_kwargs())
            if compute_aux_loss:
                model_inputs["output_router_logits"] = True
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :-logits_to_keep] = -100
            with self.accelerator.autocast():
                outputs = model(**model_inputs, labels=labels, fused_lm_head=True)
            logps.append(outputs.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(outputs.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                aux_losses.append(outputs.aux_loss)
        return (
            torch.cat(logps, dim=0),
            torch.cat(entropies, dim=0) if compute_entropy else None,
            torch.stack(aux_losses).mean() if compute_aux_loss else None,
        )

    # ---- reward diagnostics ------------------------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        group = self.num_generations if mode == "train" else self.num_generations_eval
        weighted = (rewards_per_func * self.reward_weights.to(rewards_per_func.device)).nansum(dim=1)
        metrics = self._metrics[mode]
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        metrics["completions/parse_rate"].append(sum(parse_rationale(t).parse_ok for t in texts) / len(texts))
        if group > 1 and weighted.numel() % group == 0:
            group_std = weighted.view(-1, group).std(dim=1)
            metrics["reward_group_std"].append(group_std.mean().item())
            if torch.all(group_std < 1e-6):
                warnings.warn(
                    f"every group of {group} completions got identical rewards (mean {weighted.mean().item():.3f}): "
                    "advantages are zero and this step does not train; raise the temperature or group size, "
                    "or use rewards that can tell the completions apart",
                    RewardVarianceWarning,
                    stacklevel=2,
                )
        return rewards_per_func
