"""The in-process transformers engine: batched `generate` on a loaded Backbone (the embedded default)."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from affectreason.backbones import Backbone
from affectreason.decoding import SamplingParams, hf_generation_config
from affectreason.errors import AffectReasonError
from affectreason.request import Request

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature

# A batch pads every row to its longest prompt: rows join a batch only while the padding stays under this share.
PAD_SHARE = 0.25
PAD_SLACK = 32  # tokens of padding always allowed, so near-equal short prompts still share a batch


@dataclass
class Job:
    """One server request on its way through the engine: the request, its own decoding, its processed inputs
    (made once, at admission), and a flag the client's disconnect sets."""

    request: Request
    sampling: SamplingParams
    features: BatchFeature | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)  # tokens so far, when the job was preempted
    generator: torch.Generator | None = None

    @property
    def prompt_tokens(self) -> int:
        return 0 if self.features is None else int(self.features["input_ids"].shape[1])


@dataclass
class Completion:
    """One generated sequence with its token counts and why it ended: stop (eos), length or cancelled."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


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

    @property
    def context_length(self) -> int | None:
        """The most positions the language model takes (prompt plus generated tokens)."""
        config = self.backbone.model.config
        text = getattr(config, "text_config", None) or getattr(config, "get_text_config", lambda: config)()
        return getattr(text, "max_position_embeddings", None) or getattr(
            config, "max_position_embeddings", None
        )

    def prepare(self, job: Job) -> int:
        """Process the job's clip and prompt once (kept on the job for its batch); returns its prompt tokens."""
        if job.features is None:
            job.features = self.backbone.build_inputs([job.request])
        return job.prompt_tokens

    def batches(self, requests: list[Request], lengths: list[int] | None = None) -> list[list[int]]:
        """Request indices grouped into batches of compatible layouts, at most `batch_size` each; given prompt
        `lengths`, rows of similar length go together (shortest first) so a batch carries little padding."""
        groups: dict[Any, list[int]] = defaultdict(list)
        order = sorted(range(len(requests)), key=lambda i: lengths[i]) if lengths else range(len(requests))
        for index in order:
            groups[self.backbone.batch_key(requests[index])].append(index)
        batches = []
        for indices in groups.values():
            current: list[int] = []
            for index in indices:
                longest = lengths[index] if lengths else 0
                shortest = lengths[current[0]] if lengths and current else longest
                if current and (
                    len(current) >= self.batch_size or longest - shortest > PAD_SLACK + PAD_SHARE * shortest
                ):
                    batches.append(current)
                    current = []
                current.append(index)
            batches.append(current)
        if lengths:
            batches.sort(key=lambda b: max(lengths[i] for i in b))
        return batches

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
        # each clip is processed on its own anyway: do it first, so batches can group by exact prompt length
        features = [self.backbone.build_inputs([r]) for r in requests]
        lengths = [int(f["input_ids"].shape[1]) for f in features]
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            for indices in self.batches(requests, lengths):
                inputs = self._collate([features[i] for i in indices])
                outputs = self._generate_batch([requests[i] for i in indices], sampling, inputs)
                n = sampling.num_return_sequences
                for position, index in enumerate(indices):
                    sequences[index] = outputs[position * n : (position + 1) * n]
        return [seq for group in sequences for seq in group]

    def _rng_devices(self) -> list[int]:
        device = self.backbone.device
        return [device.index or 0] if device.type == "cuda" else []

    def _generate_batch(
        self,
        requests: list[Request],
        sampling: SamplingParams,
        inputs: BatchFeature | None = None,
        hooks: dict[str, Any] | None = None,
    ) -> list[torch.Tensor]:
        backbone = self.backbone
        inputs = backbone.to_model(inputs if inputs is not None else backbone.build_inputs(requests))
        config = hf_generation_config(
            sampling, backbone.model.generation_config, backbone.suppress_token_ids()
        )
        if backbone.tokenizer.pad_token_id is not None:  # the padding build_inputs used
            config.pad_token_id = backbone.tokenizer.pad_token_id
        output = backbone.model.generate(
            **inputs, **backbone.generation_kwargs(), **(hooks or {}), generation_config=config
        )
        return list(output[:, inputs["input_ids"].shape[1] :].cpu())

    def complete(
        self, jobs: list[Job], waiting: Callable[[], bool] | None = None, slice_s: float = 0.5
    ) -> list[list[Completion]]:
        """Each job's `num_return_sequences` completions. Jobs with different seeds and token limits share a
        batch (each row samples with its own generator and stops at its own limit); a cancelled job stops at
        the next token. Jobs whose temperature, top-p or sequence count differ run in separate batches.

        With `waiting` (are other jobs queued?), a batch of single-sequence jobs yields after `slice_s` (and
        at least three times its prefill): its jobs come back `preempted`, keeping their tokens and sampler
        state, and continue where they stopped when run again."""
        import torch

        results: list[list[Completion]] = [[] for _ in jobs]
        modes: dict[SamplingParams, list[int]] = defaultdict(list)
        for index, job in enumerate(jobs):
            modes[replace(job.sampling, seed=None, max_new_tokens=1)].append(index)  # all else must agree
        with torch.inference_mode():
            for indices in modes.values():
                live = [i for i in indices if not jobs[i].cancelled.is_set()]
                lengths = [self.prepare(jobs[i]) + len(jobs[i].generated) for i in live]
                for batch in self.batches([jobs[i].request for i in live], lengths):
                    chosen = [jobs[live[b]] for b in batch]
                    done = self._complete_batch(chosen, waiting, slice_s)
                    for i, completions in zip((live[b] for b in batch), done, strict=True):
                        results[i] = completions
        return results

    def _complete_batch(
        self, jobs: list[Job], waiting: Callable[[], bool] | None, slice_s: float
    ) -> list[list[Completion]]:
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from affectreason.engines.rows import RowSampler, RowStops

        sampling = jobs[0].sampling
        n = sampling.num_return_sequences
        if sampling.greedy and n > 1:
            raise AffectReasonError("several return sequences need sampling: set a temperature above 0")
        rows = [j for j in jobs for _ in range(n)]  # one row per sequence, each with its own generator
        inputs = self._collate([_continued(j, self.backbone._TOKEN_KEYS) for j in rows])
        limits = [j.sampling.max_new_tokens - len(j.generated) for j in rows]
        stops = RowStops(
            inputs["input_ids"].shape[1],
            limits,
            set(self._eos_ids()),
            [j.cancelled for j in rows],
            waiting if n == 1 else None,  # several sequences per job are not resumable: they never yield
            slice_s,
        )
        hooks: dict[str, Any] = {"stopping_criteria": StoppingCriteriaList([stops])}
        # the config decodes greedily over what the row sampler leaves: one token per row
        config = replace(sampling, temperature=0.0, max_new_tokens=max(limits), num_return_sequences=1)
        if not sampling.greedy:
            device = self.backbone.device
            if n == 1:
                for job in jobs:  # kept on the job, so a preempted job resumes the same random stream
                    job.generator = job.generator or _generator(job.sampling.seed, 0, device)
                generators = [j.generator for j in jobs]
            else:
                generators = [_generator(j.sampling.seed, k, device) for j in jobs for k in range(n)]
            hooks["logits_processor"] = LogitsProcessorList([RowSampler(sampling, generators)])
        outputs = self._generate_batch([j.request for j in rows], config, inputs, hooks)
        decode = self.backbone.tokenizer.decode
        completions = []
        for row, (job, ids) in enumerate(zip(rows, outputs, strict=True)):
            count = stops.count[row] or min(len(ids), limits[row])
            reason = stops.finish[row] or ("length" if count >= limits[row] else "stop")
            new = ids[:count].tolist()
            if n == 1:
                job.generated.extend(new)
                new = job.generated
            completions.append(
                Completion(decode(new, skip_special_tokens=True), job.prompt_tokens, len(new), reason)
            )
        return [completions[k * n : (k + 1) * n] for k in range(len(jobs))]

    def _collate(self, features: list[BatchFeature]) -> BatchFeature:
        """One left-padded batch from single-request inputs (copied: collating consumes per-sample keys)."""
        return self.backbone.collate([type(f)(dict(f)) for f in features], padding_side="left")

    def _eos_ids(self) -> list[int]:
        eos = self.backbone.model.generation_config.eos_token_id
        if eos is None:
            eos = self.backbone.tokenizer.eos_token_id
        return [eos] if isinstance(eos, int) else list(eos or [])


def _generator(seed: int | None, sequence: int, device: torch.device) -> torch.Generator:
    """The random stream of one returned sequence: from the request's seed (mixed with the sequence index), or
    fresh when the request has none."""
    import torch

    if seed is None:
        value = random.SystemRandom().getrandbits(63)
    else:
        value = (seed * 1_000_003 + sequence) % (2**63)
    return torch.Generator(device=device).manual_seed(value)


def _continued(job: Job, token_keys: tuple[str, ...]) -> BatchFeature:
    """The job's inputs with the tokens it generated before it was preempted appended (as real tokens)."""
    import torch

    features = job.features
    if not job.generated:
        return features
    tail = torch.tensor([job.generated], dtype=features["input_ids"].dtype)
    extended = type(features)(dict(features))
    for key in token_keys:
        if key in features:
            fill = (
                tail if key == "input_ids" else torch.ones_like(tail) if key == "attention_mask" else 0 * tail
            )
            extended[key] = torch.cat([features[key], fill.to(features[key].dtype)], dim=1)
    return extended
