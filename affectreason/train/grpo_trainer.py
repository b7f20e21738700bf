"""trl's GRPOTrainer extended so a clip's video, audio-in-video and transcript reach every pass.

trl's GRPO knows images only: given a video it would sample with it (at best) and then score the policy and the
reference without it. This subclass overrides the few methods that build model inputs:

- `_generate_and_score_completions`: builds each row's backbone inputs (`Backbone.build_inputs`, one clip per row,
  cached) before trl's own rollout and scoring, and tags the output rows so later passes find their media again;
- `_tokenize_prompts` / `_generate_single_turn`: the prompt ids come from those inputs and generation gets the full
  multimodal batch (HF `generate`, placeholder tokens suppressed, or vLLM colocate with video + audio);
- `_get_per_token_logps_and_entropies`: the old-policy, reference and policy log-prob passes all forward the
  rows' video and audio features;
- `_calculate_rewards`: also logs the within-group reward std and the fraction of completions that parse, and
  warns when no group has any reward variance (every advantage is zero, so the step cannot learn).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import unwrap_model_for_generation

from affectreason.engines.base import Request
from affectreason.errors import AffectReasonError
from affectreason.rationale import parse_rationale
from affectreason.train.collator import MultimodalCollator

_TOKEN_KEYS = ("mm_token_type_ids", "token_type_ids")
_BATCH_ONLY_KEYS = ("input_ids", "attention_mask", "labels")


class RewardVarianceWarning(UserWarning):
    """Every group's completions got the same reward: advantages are zero and the step does not train."""


def vllm_rollout_inputs(backbone: Any, requests: list[Request]) -> list[dict[str, Any]]:
    """vLLM offline inputs for a batch of rows: chat prompt, frames, 16 kHz audio and `use_audio_in_video`."""
    return [backbone.vllm_inputs(request) for request in requests]


def vllm_sampling_kwargs(
    temperature: float, top_p: float, max_tokens: int, generation_kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """vLLM sampling settings of a GRPO run; HF's `suppress_tokens` becomes a -100 logit bias on those ids."""
    extra = dict(generation_kwargs or {})
    suppressed = extra.pop("suppress_tokens", None) or []
    kwargs = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, **extra}
    if suppressed:
        kwargs["logit_bias"] = {int(token): -100.0 for token in suppressed}
    return kwargs


class MultimodalGRPOTrainer(GRPOTrainer):
    """GRPO whose generation, old-policy, reference and policy passes all see the clip's video and audio."""

    def __init__(
        self, *args: Any, backbone: Any, collator: MultimodalCollator, cache_size: int = 512, **kwargs: Any
    ) -> None:
        self.backbone = backbone
        self.collator = collator  # prompt-only (`response_key=None`): decodes rows, builds generation inputs
        self._cache: OrderedDict[Hashable, tuple[Request, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._rows: list[
            tuple[Request, Any]
        ] = []  # (request, per-row model inputs) of the current generation batch
        self._row_index: torch.Tensor | None = None  # which of those rows the batch being scored holds
        super().__init__(*args, **kwargs)

    # ---- per-row multimodal inputs ------------------------------------------------------------------------

    def _row(self, row: dict[str, Any]) -> tuple[Request, Any]:
        key = (row.get("video"), row.get("audio"), row.get("subtitle"))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        requests = self.collator.requests([row])
        entry = (requests[0], self.collator.batch(requests))
        self._cache[key] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    def _collate(self, rows: list[int], padding_side: str) -> dict[str, Any]:
        """The model inputs of the given rows as one batch (shallow copies: `collate` pops per-sample flags)."""
        batch = self.backbone.collate([dict(self._rows[i][1]) for i in rows], padding_side)
        device = self.accelerator.device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._rows = [self._row(row) for row in inputs]
        output = super()._generate_and_score_completions(inputs)
        # A per-row index survives trl's shuffling and splitting, so the loss pass finds each row's media.
        output["mm_rows"] = torch.arange(len(inputs), device=self.accelerator.device)
        return output

    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict]:
        prompt_ids = []
        for _, features in self._rows:
            ids, mask = features["input_ids"][0], features["attention_mask"][0]
            prompt_ids.append(ids[mask.bool()].tolist())
        return prompt_ids, None, {}

    # ---- generation -------------------------------------------------------------------------------------------

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        if self.use_vllm:
            return self._generate_vllm()
        batch = self._collate(list(range(len(prompt_ids))), "left")
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
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

    def _generate_vllm(self) -> tuple[list[list[int]], list[list[float]]]:
        generation = self.vllm_generation
        if generation.mode != "colocate":
            raise AffectReasonError(
                "vLLM rollouts with video + audio need vllm_mode=colocate: trl's vLLM server takes images only"
            )
        from vllm import SamplingParams

        if self.state.global_step != self._last_loaded_step:
            generation.sync_weights()  # trl merges the LoRA weights into the vLLM copy
            self._last_loaded_step = self.state.global_step
        settings = vllm_sampling_kwargs(
            self.temperature, self.top_p, self.max_completion_length, self.args.generation_kwargs
        )
        params = SamplingParams(n=1, logprobs=0, **settings)
        inputs = vllm_rollout_inputs(self.backbone, [request for request, _ in self._rows])
        outputs = generation.llm.generate(inputs, sampling_params=params, use_tqdm=False)
        completion_ids = [list(out.outputs[0].token_ids) for out in outputs]
        logprobs = [
            [next(iter(step.values())).logprob for step in out.outputs[0].logprobs] for out in outputs
        ]
        return completion_ids, logprobs

    # ---- log-prob passes -------------------------------------------------------------------------------------------

    def _compute_loss(self, model, inputs):
        self._row_index = inputs["mm_rows"]
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._row_index = None

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
        rows = self._row_index if self._row_index is not None else torch.arange(input_ids.size(0))
        rows = rows.tolist()
        batch_size = batch_size or input_ids.size(0)
        prompt_width = input_ids.size(1) - logits_to_keep
        logps, entropies, aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            model_inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            for key, value in self._collate(rows[start:end], "left").items():
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
