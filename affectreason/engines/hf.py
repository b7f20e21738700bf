"""The in-process transformers engine: batched `generate` on a loaded Backbone (the embedded default)."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from affectreason.backbones import Backbone
from affectreason.decoding import SamplingParams, hf_generation_config
from affectreason.engines import encoded, kv
from affectreason.errors import AffectReasonError
from affectreason.request import Request

if TYPE_CHECKING:
    import torch
    from transformers import BatchFeature

# A batch pads every row to its longest prompt: rows join a batch only while the padding stays under this share.
PAD_SHARE = 0.25
PAD_SLACK = 32  # tokens of padding always allowed, so near-equal short prompts still share a batch
# Jobs that keep their KV caches when they yield resume for one token's cost, so a decoding call may yield this
# often, and a call of new prompts yields right after their prefill (they then decode with the jobs waiting).
DECODE_SLICE_S = 0.05


@dataclass
class Job:
    """One server request on its way through the engine: the request, its own decoding, its processed inputs
    (made once, at admission), and a flag the client's disconnect sets."""

    request: Request
    sampling: SamplingParams
    features: BatchFeature | None = None
    key: Hashable = None  # jobs share a batch only when their backbone batch keys agree
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)  # tokens so far, when the job was preempted
    generator: torch.Generator | None = None
    # A single-sequence job keeps its KV cache and the model's rope offsets when it yields, to resume cheaply.
    cache: Any = None
    rope_offsets: dict[str, Any] | None = None
    # its vision encoder outputs, made before its prefill (see `HFEngine.encode`)
    encoded: dict[str, Any] | None = None

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
        # whether the model's KV caches split into rows, known after the first call
        self._splittable: bool | None = None
        self._encodes = encoded.supported(backbone.model)

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
            job.key = self.backbone.batch_key(job.request)
        return job.prompt_tokens

    def encode(self, job: Job) -> None:
        """Run the vision encoders of a new (prepared) job now, unless a media worker did: its prefill then runs
        the language model only."""
        if not self._encodes or job.encoded is not None or job.cache is not None:
            return
        self.prepare(job)
        job.encoded = encoded.encode(self.backbone, job.features)

    def batches(self, keys: list[Hashable], lengths: list[int] | None = None) -> list[list[int]]:
        """Indices of requests grouped into batches of equal backbone batch `keys`, at most `batch_size` each;
        given prompt `lengths`, rows of similar length go together (shortest first) with little padding."""
        groups: dict[Any, list[int]] = defaultdict(list)
        order = sorted(range(len(keys)), key=lambda i: lengths[i]) if lengths else range(len(keys))
        for index in order:
            groups[keys[index]].append(index)
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
            for indices in self.batches([self.backbone.batch_key(r) for r in requests], lengths):
                inputs = self._collate([features[i] for i in indices])
                outputs, _ = self._generate_batch([requests[i] for i in indices], sampling, inputs)
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
    ) -> tuple[list[torch.Tensor], Any]:
        """The new token ids of each row, and the KV cache when `hooks` ask for a dict output."""
        backbone = self.backbone
        inputs = backbone.to_model(inputs if inputs is not None else backbone.build_inputs(requests))
        config = hf_generation_config(
            sampling, backbone.model.generation_config, backbone.suppress_token_ids()
        )
        if backbone.tokenizer.pad_token_id is not None:  # the padding build_inputs used
            config.pad_token_id = backbone.tokenizer.pad_token_id
        hooks = dict(hooks or {})
        config.return_dict_in_generate = hooks.pop("return_dict_in_generate", False)
        output = backbone.model.generate(
            **inputs, **backbone.generation_kwargs(), **hooks, generation_config=config
        )
        sequences = getattr(output, "sequences", output)  # an output dict with return_dict_in_generate
        cache = getattr(output, kv.cache_argument(), None)
        return list(sequences[:, inputs["input_ids"].shape[1] :].cpu()), cache

    def complete(
        self, jobs: list[Job], waiting: Callable[[], bool] | None = None, slice_s: float = 0.5
    ) -> list[list[Completion]]:
        """Each job's `num_return_sequences` completions. Jobs with different seeds and token limits share a
        batch (each row samples with its own generator and stops at its own limit); a cancelled job stops at
        the next token. Jobs whose temperature, top-p or sequence count differ run in separate batches.

        With `waiting` (are other jobs queued?), a batch of single-sequence jobs yields: its jobs come back
        `preempted`, keeping their tokens, sampler state and KV caches, and continue where they stopped when run
        again, all resumed jobs of a call in one batch. A batch of new prompts yields right after their prefill,
        a resumed batch after 50 ms, and a batch of several ends as soon as one row is done (the others come back
        preempted). Where the model's caches cannot be split by row, a batch of several keeps only its tokens and
        yields after `slice_s` and at least three times its prefill (which it repeats on resume)."""
        import torch

        results: list[list[Completion]] = [[] for _ in jobs]
        modes: dict[SamplingParams, list[int]] = defaultdict(list)
        for index, job in enumerate(jobs):
            modes[replace(job.sampling, seed=None, max_new_tokens=1)].append(index)  # all else must agree
        with torch.inference_mode():
            for indices in modes.values():
                live = [i for i in indices if not jobs[i].cancelled.is_set()]
                lengths = [self.prepare(jobs[i]) + len(jobs[i].generated) for i in live]
                # jobs resuming from kept caches decode together whatever their lengths (no prefill to pad)
                cached = [b for b, i in enumerate(live) if jobs[i].cache is not None]
                resumed = [cached[k : k + self.batch_size] for k in range(0, len(cached), self.batch_size)]
                fresh = [b for b, i in enumerate(live) if jobs[i].cache is None]
                grouped = self.batches([jobs[live[b]].key for b in fresh], [lengths[b] for b in fresh])
                for batch in resumed + [[fresh[k] for k in group] for group in grouped]:
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
        caches = [j.cache for j in jobs]
        for job in jobs:
            job.cache = None
        resuming = n == 1 and all(c is not None for c in caches)
        features, hooks = self._features(jobs, rows, resuming)
        inputs = self._collate(features)
        limits = [j.sampling.max_new_tokens - len(j.generated) for j in rows]
        # jobs keep their KV caches when they yield, so resuming costs one token instead of a prefill
        keeps = n == 1 and (len(rows) == 1 or self._splittable)
        stops = RowStops(
            inputs["input_ids"].shape[1],
            limits,
            set(self._eos_ids()),
            [j.cancelled for j in rows],
            waiting if n == 1 else None,  # several sequences per job are not resumable: they never yield
            (min(slice_s, DECODE_SLICE_S) if resuming else 0.0) if keeps else slice_s,
            prefills_per_slice=0.0 if keeps else 3.0,
            # a finished row answers at once; the others resume with the jobs that joined meanwhile
            end_on_finish=keeps and waiting is not None and len(rows) > 1,
        )
        hooks["stopping_criteria"] = StoppingCriteriaList([stops])
        if n == 1:
            hooks["return_dict_in_generate"] = True
        if resuming:
            inputs = self._resume(jobs, caches, inputs, hooks)
        # the config decodes greedily over what the row sampler leaves: one token per row
        config = replace(sampling, temperature=0.0, max_new_tokens=max(limits), num_return_sequences=1)
        if not sampling.greedy:
            hooks["logits_processor"] = LogitsProcessorList([RowSampler(sampling, self._generators(jobs, n))])
        outputs, cache = self._generate_batch([j.request for j in rows], config, inputs, hooks)
        if cache is not None and self._splittable is None:
            self._splittable = kv.splittable(cache)
        if keeps:
            self._keep(jobs, stops, cache, inputs["attention_mask"])
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

    def _features(
        self, jobs: list[Job], rows: list[Job], resuming: bool
    ) -> tuple[list[BatchFeature], dict[str, Any]]:
        """Each row's inputs (with the tokens it generated so far) and what `generate` takes besides them. A
        resumed batch feeds tokens only: its media are in the kept caches. A new one feeds its vision encoder
        outputs, made beforehand (by a media worker) or now, instead of its pixels."""
        tokens = self.backbone._TOKEN_KEYS
        features = [_continued(j, tokens) for j in rows]
        if resuming:
            return [type(f)({k: v for k, v in f.items() if k in tokens}) for f in features], {}
        if not self._encodes:
            return features, {}
        for job in jobs:
            self.encode(job)
        features = [encoded.without_pixels(f) for f in features]
        return features, {"mm_encoder_outputs": encoded.join([j.encoded for j in rows])}

    def _generators(self, jobs: list[Job], n: int) -> list[torch.Generator]:
        """One random stream per row; a single-sequence job keeps its own, so it resumes the same stream."""
        device = self.backbone.device
        if n > 1:
            return [_generator(j.sampling.seed, k, device) for j in jobs for k in range(n)]
        for job in jobs:
            job.generator = job.generator or _generator(job.sampling.seed, 0, device)
        return [j.generator for j in jobs]

    def _resume(
        self, jobs: list[Job], caches: list[Any], inputs: BatchFeature, hooks: dict[str, Any]
    ) -> BatchFeature:
        """Continue preempted jobs from their kept caches, merged and left-padded like their tokens (the media
        are in the caches already); the model gets back each job's rope offsets (another call's generation
        moved them)."""
        import torch

        room = max(j.sampling.max_new_tokens - len(j.generated) for j in jobs)
        cache, pads = kv.merge(caches, room)
        width = inputs["input_ids"].shape[1]
        assert pads == [width - int(n) for n in inputs["attention_mask"].sum(1)], "cache and tokens disagree"
        hooks[kv.cache_argument()] = cache
        # text positions count only the unpadded tokens (from the attention mask), so offsets need no shift
        offsets = {
            name: torch.cat([j.rope_offsets[name] for j in jobs]) for name in (jobs[0].rope_offsets or {})
        }
        kv.set_rope_offsets(self.backbone.model, offsets)
        return inputs

    def _keep(self, jobs: list[Job], stops: Any, cache: Any, mask: torch.Tensor) -> None:
        """Keep each preempted job's cache and rope offsets for its resume: its tokens so far less the last (fed
        again on resume), cut out of the batch past its left padding."""
        offsets = kv.rope_offsets(self.backbone.model)
        width = mask.shape[1]
        for index, job in enumerate(jobs):
            job.rope_offsets = None
            job.encoded = None  # the media are in its cache now, or it is done
            if stops.finish[index] != "preempted":
                continue
            real = int(mask[index].sum())
            pad, length = width - real, real + stops.count[index] - 1
            if len(jobs) == 1:
                surplus = cache.get_seq_length() - length
                if surplus > 0:
                    cache.crop(-surplus)
                job.cache = cache
            else:
                job.cache = kv.row(cache, index, pad, length)
            job.rope_offsets = {name: v[index : index + 1] for name, v in offsets.items()}

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
