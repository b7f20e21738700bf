"""The in-process transformers engine on tiny random backbones: batching, determinism, suppression."""

from __future__ import annotations

import pytest

from affectreason.decoding import SamplingParams
from affectreason.engines.hf import HFEngine
from affectreason.errors import AffectReasonError
from affectreason.request import ALL_MODALITIES, Request


def _requests(make_clip) -> list[Request]:
    return [
        Request(make_clip(frames=4, seconds=2.0), "Describe the emotion."),
        Request(
            make_clip(frames=4, seconds=1.0, transcript="No."), "Describe the emotion in this clip, please."
        ),
        Request(make_clip(video=False), "Describe the voice."),
        Request(make_clip(audio=False, transcript=None), "Describe the face."),
        Request(make_clip(frames=4, seconds=3.0), "Why?", modalities=frozenset({"video", "text"})),
    ]


def test_batched_equals_unbatched_under_greedy(any_backbone, make_clip):
    requests = _requests(make_clip)
    greedy = SamplingParams(max_new_tokens=8)
    batched = HFEngine(any_backbone, batch_size=4).generate(requests, greedy)
    single = [HFEngine(any_backbone, batch_size=1).generate([r], greedy)[0] for r in requests]
    assert batched == single
    assert len(batched) == len(requests) and all(isinstance(t, str) and t for t in batched)


def test_sampling_is_reproducible_with_a_seed_and_returns_n_per_request(loaded_backbones, make_clip):
    engine = HFEngine(loaded_backbones["qwen2_5_omni"], batch_size=2)
    requests = _requests(make_clip)[:3]
    sampling = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=10, seed=7, num_return_sequences=2)
    first = engine.generate(requests, sampling)
    assert len(first) == 6
    assert engine.generate(requests, sampling) == first
    other = engine.generate(
        requests, SamplingParams(temperature=1.0, max_new_tokens=10, seed=8, num_return_sequences=2)
    )
    assert other != first


@pytest.fixture(params=sorted(["qwen2_5_omni", "qwen3_omni", "qwen_vl", "llava"]))
def placeholder_loving_backbone(request, tiny_checkpoints):
    """A fresh tiny backbone whose head makes a placeholder token the top choice at every step."""
    import torch

    from affectreason.backbones import load_backbone

    backbone = load_backbone(str(tiny_checkpoints[request.param]), device="cpu")
    ids = backbone.suppress_token_ids()
    with torch.no_grad():
        norm = backbone.model.get_submodule("model.language_model.norm").weight
        norm.zero_()
        norm[0] = 1.0  # the head now sees only hidden dimension 0, whose sign varies
        head = backbone.model.get_output_embeddings().weight
        head[:, 0] *= 0.01
        head[ids[0], 0], head[ids[-1], 0] = 100.0, -100.0
    return backbone


def test_placeholder_tokens_are_never_sampled(placeholder_loving_backbone, make_clip):
    backbone = placeholder_loving_backbone
    suppressed = set(backbone.suppress_token_ids())
    assert backbone.tokenizer.convert_tokens_to_ids(backbone.processor.video_token) in suppressed
    requests = [Request(make_clip(), "Describe."), Request(make_clip(video=False), "Describe.")]
    inputs = backbone.to_model(backbone.build_inputs(requests))
    unsuppressed = backbone.model.generate(**inputs, max_new_tokens=1, do_sample=False)
    assert set(unsuppressed[:, -1].tolist()) <= suppressed  # without suppression a placeholder wins
    engine = HFEngine(backbone)
    for sampling in (
        SamplingParams(max_new_tokens=6),
        SamplingParams(temperature=1.0, max_new_tokens=6, seed=0),
    ):
        drawn = {int(t) for seq in engine.generate_ids(requests, sampling) for t in seq}
        assert drawn and not suppressed & drawn


def test_greedy_with_several_sequences_is_refused(loaded_backbones, make_clip):
    engine = HFEngine(loaded_backbones["qwen_vl"])
    with pytest.raises(AffectReasonError, match="need sampling"):
        engine.generate([Request(make_clip(), "x")], SamplingParams(num_return_sequences=2))


def test_omni_batches_keep_audio_in_video_layouts_apart(loaded_backbones, make_clip):
    engine = HFEngine(loaded_backbones["qwen2_5_omni"], batch_size=8)
    requests = _requests(make_clip)
    groups = engine.batches([engine.backbone.batch_key(r) for r in requests])
    assert sorted(i for g in groups for i in g) == list(range(len(requests)))
    for group in groups:
        assert len({engine.backbone.batch_key(requests[i]) for i in group}) == 1
    assert requests[0].modalities == ALL_MODALITIES and any(0 in g and 1 in g for g in groups)


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen3_omni", "qwen_vl", "llava"])
def test_jobs_prefilled_apart_decode_together_with_their_own_answers(family, loaded_backbones, make_clip):
    """Prompts of different lengths are prefilled in separate calls and yield keeping their caches; resumed in
    one call their caches are left-padded together, and each answer is the one it gives alone."""
    from affectreason.engines.hf import Job

    engine = HFEngine(loaded_backbones[family], batch_size=4)
    requests = [
        Request(make_clip(frames=2, size=(32, 32)), "Why?"),
        Request(make_clip(frames=8, size=(96, 96), seconds=3.0), "Describe the emotion in detail."),
        Request(make_clip(video=False), "Voice?"),
    ]
    sampling = SamplingParams(temperature=1.0, max_new_tokens=24, seed=5)
    alone = [engine.complete([Job(r, sampling)])[0][0] for r in requests]
    jobs = [Job(r, sampling) for r in requests]
    for job in jobs:  # each prefilled alone, cut after its first slice
        (result,) = engine.complete([job], waiting=lambda: True, slice_s=0.0)
        assert result[0].finish_reason == "preempted" and job.cache is not None
    assert len({j.prompt_tokens for j in jobs}) == 3
    results = engine.complete(jobs)  # one call: all three resume together
    assert [r[0].text for r in results] == [a.text for a in alone]
    assert all(j.cache is None for j in jobs)
    # a batch that yields keeps each row's cache: cut them again mid-way, then finish
    jobs = [Job(r, sampling) for r in requests]
    engine.complete(jobs, waiting=lambda: True, slice_s=0.0)
    engine.complete(jobs, waiting=lambda: True, slice_s=0.0)
    assert all(j.cache is not None and j.generated for j in jobs)
    assert [r[0].text for r in engine.complete(jobs)] == [a.text for a in alone]


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen3_omni", "qwen_vl", "llava"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_preempted_lone_job_resumes_from_its_cache_with_the_same_answer(
    family, temperature, loaded_backbones, make_clip
):
    """Time slicing: a job running alone keeps its KV cache (and its rope offsets) when it yields, so resuming
    costs one token, and the answer, however often it was cut, is the one it gives uninterrupted."""
    from affectreason.engines.hf import Job

    engine = HFEngine(loaded_backbones[family], batch_size=4)
    request = _requests(make_clip)[0]  # frames and audio: the omni rope offsets depend on the video
    sampling = SamplingParams(temperature=temperature, max_new_tokens=40, seed=3)
    (alone,) = engine.complete([Job(request, sampling)])
    job, calls, other = Job(request, sampling), 0, Job(Request(make_clip(video=False), "Voice?"), sampling)
    while True:
        calls += 1
        (result,) = engine.complete([job], waiting=lambda: True, slice_s=0.0)
        if result[0].finish_reason != "preempted":
            break
        assert job.cache is not None  # kept for the cheap resume
        engine.complete([other])  # another request runs in between and moves the model's rope offsets
        other.generated.clear()
        other.cache = None
    assert calls > 3  # it really was cut several times
    assert result[0].text == alone[0].text and result[0].completion_tokens == alone[0].completion_tokens
    assert job.cache is None  # finished: nothing held


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen3_omni", "qwen_vl", "llava"])
def test_a_finished_row_answers_at_once_while_the_others_resume(family, loaded_backbones, make_clip):
    """In a served batch, the row that ends first ends the call: its answer leaves then, and the rows still
    going come back preempted with their caches, to resume with whatever joined meanwhile (same answers)."""
    from affectreason.engines.hf import Job

    engine = HFEngine(loaded_backbones[family], batch_size=4)
    clip = make_clip(frames=4, seconds=2.0)
    requests = [Request(clip, "Why?"), Request(clip, "How?")]  # one batch: their prompts pad little
    short, long = (SamplingParams(temperature=1.0, max_new_tokens=n, seed=n) for n in (3, 20))
    alone = [engine.complete([Job(r, s)])[0][0] for r, s in zip(requests, (short, long), strict=True)]
    assert alone[1].completion_tokens > 3, "the random model stopped early; pick another seed"
    jobs = [Job(requests[0], short), Job(requests[1], long)]
    first, second = engine.complete(jobs, waiting=lambda: False)
    assert first[0].finish_reason == alone[0].finish_reason and first[0].text == alone[0].text
    assert second[0].finish_reason == "preempted" and jobs[1].cache is not None
    assert len(jobs[1].generated) == first[0].completion_tokens
    (resumed,) = engine.complete([jobs[1]], waiting=lambda: False)
    assert resumed[0].text == alone[1].text and resumed[0].finish_reason == alone[1].finish_reason


def test_reserved_cache_layers_read_like_dynamic_ones():
    """The merged caches write each step into reserved room instead of concatenating: through updates past the
    room, a crop and a batch selection they hold exactly what transformers' own dynamic layer holds."""
    import torch
    from transformers.cache_utils import DynamicLayer

    from affectreason.engines.kv import ReservedLayer

    generator = torch.Generator().manual_seed(0)

    def states(rows: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(rows, 2, length, 4, generator=generator), torch.randn(rows, 2, length, 4)

    start = states(3, 5)
    reserved, dynamic = ReservedLayer(*start, room=2), DynamicLayer()
    dynamic.update(*start)
    for step in ("update", "update", "update", "crop", "update", "select", "update"):
        step_states = states(reserved.keys.shape[0], 1)
        for layer in (reserved, dynamic):
            if step == "update":
                returned = layer.update(*step_states)
                assert returned[0] is layer.keys
            elif step == "crop":
                layer.crop(-2)
            else:
                layer.batch_select_indices(torch.tensor([2, 0]))
        assert torch.equal(reserved.keys, dynamic.keys) and torch.equal(reserved.values, dynamic.values)
        assert reserved.get_seq_length() == dynamic.get_seq_length()


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen3_omni", "qwen_vl", "llava"])
def test_jobs_encoded_beforehand_answer_as_generate_does(family, loaded_backbones, make_clip):
    """Each new job's vision encoder outputs are made before its prefill (by the engine, or by a media worker)
    and joined for its batch: one job or a batch of them, each answers exactly what transformers' own `generate`
    gives for its clip."""
    from affectreason.engines.hf import Job

    engine = HFEngine(loaded_backbones[family], batch_size=4)
    requests = [
        Request(make_clip(frames=4, seconds=2.0), "Why?"),
        Request(make_clip(frames=4, seconds=2.0), "How?"),
        Request(make_clip(frames=8, size=(96, 96), seconds=3.0), "Describe the emotion."),
    ]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=12)
    expected = [engine.generate([r], greedy)[0] for r in requests]
    jobs = [Job(r, greedy) for r in requests]
    for job in jobs[1:]:  # the first is encoded within its call
        engine.encode(job)
        assert job.encoded
    together = engine.complete(jobs[:2])  # one batch: their encoder outputs joined
    assert [c[0].text for c in together] == expected[:2]
    assert engine.complete(jobs[2:])[0][0].text == expected[2]
