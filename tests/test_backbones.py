"""Backbones on tiny random checkpoints: loading, inputs, ablations, training labels, LoRA, adapters, errors."""

from __future__ import annotations

import json
import time
from importlib.metadata import distribution

import numpy as np
import pytest

from affectreason.backbones import DEFAULT_MODEL, backbone_class_for, load_backbone
from affectreason.backbones.batching import IGNORE_INDEX
from affectreason.decoding import SamplingParams
from affectreason.engines.hf import HFEngine
from affectreason.errors import AffectReasonError, ModelLoadError
from affectreason.request import Request

NATIVE = {"qwen2_5_omni": True, "qwen3_omni": True, "qwen_vl": False, "llava": False}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def _tower_calls(backbone, requests) -> dict[str, int]:
    """Forward once and count calls into each tower with forward hooks."""
    import torch

    calls = dict.fromkeys(backbone.tower_modules(), 0)
    hooks = [
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
        for name, module in backbone.tower_modules().items()
    ]
    try:
        with torch.inference_mode():
            backbone.model(**backbone.to_model(backbone.build_inputs(requests)))
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def test_every_family_loads_through_the_registry(loaded_backbones):
    for name, backbone in loaded_backbones.items():
        assert backbone.native_audio is NATIVE[name]
        assert backbone_class_for(backbone.model.config.model_type) is type(backbone)
        assert set(backbone.tower_modules()) == ({"vision", "audio"} if NATIVE[name] else {"vision"})
        assert sum(p.numel() for p in backbone.model.parameters()) < 1_000_000


def test_full_inputs_carry_video_audio_and_transcript(any_backbone, make_clip):
    request = Request(make_clip(), "Describe the emotion.")
    batch = any_backbone.build_inputs([request])
    text = any_backbone.tokenizer.decode(batch["input_ids"][0])
    assert "pixel_values_videos" in batch and 'Transcript: "I can' in text
    if any_backbone.native_audio:
        assert "input_features" in batch and batch["use_audio_in_video"] is True
        assert any_backbone.processor.audio_token in text
    else:
        assert "input_features" not in batch and "\nAudio: " in text


@pytest.mark.parametrize(
    ("modalities", "expect_vision", "expect_audio"),
    [({"video", "text"}, 1, 0), ({"audio", "text"}, 0, 1), ({"text"}, 0, 0)],
)
def test_ablations_keep_the_excluded_towers_idle(
    any_backbone, make_clip, modalities, expect_vision, expect_audio
):
    request = Request(make_clip(), "Describe.", modalities=frozenset(modalities))
    calls = _tower_calls(any_backbone, [request])
    assert calls["vision"] == expect_vision
    if any_backbone.native_audio:
        assert calls["audio"] == expect_audio
    text = any_backbone.prompt_text(request)
    assert ("Audio:" in text) == (not any_backbone.native_audio and "audio" in modalities)
    assert ("Transcript:" in text) == ("text" in modalities)


def test_qwen2_5_omni_audio_window_trimmed_without_changing_the_model_input(loaded_backbones, make_clip):
    """The production inputs pad audio features to each clip (not to 30 s); the model sees the same numbers."""
    import torch

    backbone = loaded_backbones["qwen2_5_omni"]
    requests = [Request(make_clip(seconds=2.0), "Describe."), Request(make_clip(seconds=0.7), "Why?")]
    trimmed = backbone.build_inputs(requests)
    assert trimmed["input_features"].shape[-1] == 2 * 16_000 // 160 + 3  # the longest clip + one window
    media = [backbone.media(r) for r in requests]
    full = backbone.collate(
        [
            backbone.processor(  # the processor's own 30 s padding
                text=[backbone.prompt_text(r)],
                videos=[m.frames],
                audio=[m.audio],
                videos_kwargs=backbone.video_kwargs(m.frames, m.fps),
                load_audio_from_video=True,
                audio_from_video_indices=[0],
                return_tensors="pt",
            )
            for r, m in zip(requests, media, strict=True)
        ],
        padding_side="left",
    )
    assert full["input_features"].shape[-1] == 3000
    for row in range(2):
        mask, kept = full["feature_attention_mask"][row].bool(), trimmed["feature_attention_mask"][row].bool()
        assert torch.equal(full["input_features"][row][:, mask], trimmed["input_features"][row][:, kept])
    full["use_audio_in_video"] = True
    with torch.inference_mode():
        expected = backbone.model(**backbone.to_model(full)).logits
        got = backbone.model(**backbone.to_model(trimmed)).logits
    assert torch.equal(trimmed["input_ids"], full["input_ids"]) and torch.allclose(got, expected, atol=1e-5)


def test_audio_only_and_silent_clips_generate(any_backbone, make_clip):
    requests = [Request(make_clip(video=False), "Describe."), Request(make_clip(audio=False), "Describe.")]
    texts = HFEngine(any_backbone).generate(requests, SamplingParams(max_new_tokens=5))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    calls = _tower_calls(any_backbone, requests[:1])
    assert calls["vision"] == 0 and calls.get("audio", 1) == 1


def test_training_labels_cover_only_the_response_and_eos(any_backbone, make_clip):
    requests = [
        Request(make_clip(), "Describe."),
        Request(make_clip(video=False, transcript=None), "Describe the voice in detail."),
        Request(make_clip(audio=False), "Why?"),
    ]
    responses = [
        "<think>\nVisual: frown\n</think>\n<answer>\nEmotions: angry\n</answer>",
        "happy",
        "sad, calm",
    ]
    batch = any_backbone.build_inputs(requests, responses=responses)
    tokenizer = any_backbone.tokenizer
    for row, response in enumerate(responses):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX]
        assert tokenizer.decode(labelled).endswith(response + tokenizer.eos_token)
        assert len(labelled) <= len(tokenizer(response)["input_ids"]) + 2
    loss = any_backbone.model(**any_backbone.to_model(batch)).loss
    assert np.isfinite(loss.item())


def test_lora_targets_only_the_language_model(tiny_checkpoints):
    from peft import LoraConfig, get_peft_model

    for path in tiny_checkpoints.values():
        backbone = load_backbone(str(path), device="cpu")
        towers = tuple(backbone.tower_paths.values())
        config = LoraConfig(
            r=2, target_modules=backbone.lora_target_modules, exclude_modules=backbone.lora_exclude_modules()
        )
        model = get_peft_model(backbone.model, config)
        adapted = [n for n, _ in model.named_modules() if n.endswith("lora_A")]
        assert adapted and all(".language_model.layers." in n for n in adapted)
        assert not any(tower in n for n in adapted for tower in towers)


def _save_lora(path, out, seed=0):
    import torch
    from peft import LoraConfig, get_peft_model

    backbone = load_backbone(str(path), device="cpu")
    torch.manual_seed(seed)
    config = LoraConfig(
        r=2,
        target_modules=backbone.lora_target_modules,
        exclude_modules=backbone.lora_exclude_modules(),
        init_lora_weights=False,
    )
    get_peft_model(backbone.model, config).save_pretrained(out)
    return out


def test_adapter_loads_and_changes_the_output(tiny_qwen2_5_omni, make_clip, tmp_path):
    adapter = _save_lora(tiny_qwen2_5_omni, tmp_path / "lora")
    base = load_backbone(str(tiny_qwen2_5_omni), device="cpu")
    tuned = load_backbone(str(tiny_qwen2_5_omni), adapter=str(adapter), device="cpu")
    assert tuned.adapter == str(adapter) and hasattr(tuned.model, "peft_config")
    request = [Request(make_clip(), "Describe.")]
    import torch

    with torch.inference_mode():
        a = base.model(**base.to_model(base.build_inputs(request))).logits
        b = tuned.model(**tuned.to_model(tuned.build_inputs(request))).logits
    assert not torch.allclose(a, b)


def test_mismatching_or_missing_adapters_are_one_line_errors(tiny_qwen2_5_omni, tiny_qwen3_omni, tmp_path):
    foreign = _save_lora(tiny_qwen3_omni, tmp_path / "foreign")
    with pytest.raises(ModelLoadError) as exc:
        load_backbone(str(tiny_qwen2_5_omni), adapter=str(foreign), device="cpu")
    assert "was trained for" in _one_line(exc)
    with pytest.raises(ModelLoadError) as exc:
        load_backbone(str(tiny_qwen2_5_omni), adapter=str(tmp_path / "nowhere"), device="cpu")
    assert "does not exist" in _one_line(exc)
    with pytest.raises(ModelLoadError) as exc:
        load_backbone(str(tiny_qwen2_5_omni), adapter=str(tiny_qwen3_omni), device="cpu")
    assert "not a peft adapter" in _one_line(exc)


def test_missing_hub_model_fails_fast_with_the_download_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as exc:
        load_backbone(DEFAULT_MODEL)
    assert time.perf_counter() - start < 5
    assert _one_line(exc) == (
        f"model '{DEFAULT_MODEL}' is not available offline: download it with "
        f"`hf download {DEFAULT_MODEL}` or pass --model PATH to a local checkpoint"
    )
    # the command named is one the installed huggingface_hub provides
    scripts = {e.name for e in distribution("huggingface_hub").entry_points if e.group == "console_scripts"}
    assert "hf" in scripts


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(ModelLoadError) as exc:
        load_backbone(str(tmp_path))
    assert "not a model checkpoint" in _one_line(exc)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelLoadError) as exc:
        load_backbone(str(tmp_path))
    assert "unsupported model type 'gpt2'" in _one_line(exc) and "qwen2_5_omni_thinker" in str(exc.value)


def test_unknown_dtype_and_quantization_are_refused(tiny_qwen_vl):
    with pytest.raises(AffectReasonError, match="unknown dtype 'fp8'"):
        load_backbone(str(tiny_qwen_vl), dtype="fp8", device="cpu")
    with pytest.raises(AffectReasonError, match="unknown quantization '3bit'"):
        load_backbone(str(tiny_qwen_vl), quantization="3bit", device="cpu")


def test_eight_bit_load_keeps_towers_in_full_precision(tiny_qwen2_5_omni, make_clip):
    pytest.importorskip("bitsandbytes")
    import torch

    backbone = load_backbone(str(tiny_qwen2_5_omni), quantization="8bit", device="cpu")
    kinds = {type(m).__name__ for m in backbone.model.model.language_model.modules()}
    assert "Linear8bitLt" in kinds
    assert all(
        type(m) is torch.nn.Linear
        for m in backbone.model.model.visual.modules()
        if "Linear" in type(m).__name__
    )
    texts = HFEngine(backbone).generate([Request(make_clip(), "Describe.")], SamplingParams(max_new_tokens=4))
    assert isinstance(texts[0], str)


def test_vllm_inputs_use_the_documented_offline_form(any_backbone, make_clip):
    clip = make_clip()
    form = any_backbone.vllm_inputs(Request(clip, "Describe."))
    assert set(form) <= {"prompt", "multi_modal_data", "mm_processor_kwargs"}
    assert form["prompt"].count(any_backbone.processor.video_token) == 1
    assert form["multi_modal_data"]["video"] is clip.frames
    if any_backbone.native_audio:
        audio, rate = form["multi_modal_data"]["audio"]
        assert rate == 16_000 and len(audio) == len(clip.audio)
        assert form["mm_processor_kwargs"]["use_audio_in_video"] is True
        assert any_backbone.processor.audio_token not in form["prompt"]
    else:
        assert "audio" not in form["multi_modal_data"] and "Audio:" in form["prompt"]


def test_processor_only_load_serves_vllm_inputs(tiny_qwen_vl, make_clip):
    backbone = load_backbone(str(tiny_qwen_vl), load_model=False)
    assert backbone.model is None
    assert backbone.vllm_inputs(Request(make_clip(), "x"))["prompt"].endswith("assistant\n")


@pytest.mark.parametrize("shared", [False, True])
def test_media_workers_build_the_model_inputs_of_every_family(any_backbone, clip_av, shared):
    """A media worker holds the processor (and, on a CPU device, the model's shared weights); what it prepares
    from a chat body is what the loaded backbone builds from the same file, and its vision encoder outputs are
    the model's own."""
    import torch

    from affectreason.engines import encoded
    from affectreason.media import load_clip

    model = any_backbone.model if shared else None
    call, arrays, key, outputs = _prepared_in_worker(any_backbone, model, clip_av)
    expected = any_backbone.build_inputs([Request(load_clip(clip_av, frames=4), "Why?")])
    assert call.request.clip.frames is None  # the decoded clip stays in the worker
    assert key == any_backbone.batch_key(Request(load_clip(clip_av, frames=4), "Why?"))
    pixels = set(encoded.PIXEL_KEYS.values()) if shared else set()
    assert set(arrays) == set(expected) - pixels  # the encoder outputs replace the pixels
    for name, value in expected.items():
        if name not in pixels:
            got = arrays[name]
            assert (
                torch.equal(torch.from_numpy(got), value) if isinstance(value, torch.Tensor) else got == value
            )
    if not shared:
        assert outputs is None
        return
    own = encoded.encode(any_backbone, expected)
    received = encoded.from_numpy(outputs)
    assert set(received) == set(own) == {"video"}
    assert _leaves(received) and len(_leaves(received)) == len(_leaves(own))
    for got, want in zip(_leaves(received), _leaves(own), strict=True):
        assert torch.equal(got, want)


def _prepared_in_worker(backbone, model, clip) -> tuple:
    """What a media worker started for `backbone` (with `model` shared, or None) prepares from a chat body that
    sends `clip` as a video part with 4 frames: the call, its arrays, its batch key and its encoder outputs."""
    import torch

    from affectreason.engines.wire import data_url
    from affectreason.prompts import load_prompt
    from affectreason.serve import workers
    from affectreason.serve.limits import Limits

    threads = torch.get_num_threads()
    workers._start(type(backbone), backbone.processor, backbone.model_id, model)  # sets one thread
    torch.set_num_threads(threads)
    video = {"type": "video_url", "video_url": {"url": data_url("video/mp4", clip.read_bytes())}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": [video, {"type": "text", "text": "Why?"}]}],
        "affectreason": {"frames": 4},
    }
    return workers._prepare(body, {"m": None}, Limits(), load_prompt("describe"))


def _leaves(value) -> list:
    """The tensors inside encoder outputs, in order."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [leaf for v in value for leaf in _leaves(v)]
    if hasattr(value, "keys"):
        return [leaf for key in value.keys() for leaf in _leaves(value[key])]
    return []


def test_a_media_worker_encodes_for_a_bf16_model_what_generate_uses(tiny_qwen2_5_omni, clip_av):
    """bfloat16 encoder outputs cross from the worker as their 16 bits (numpy has no bfloat16), and the job
    answers as transformers' `generate` does on the same file."""
    import torch

    from affectreason.engines import encoded
    from affectreason.engines.hf import Job
    from affectreason.media import load_clip
    from affectreason.serve import workers

    backbone = load_backbone(str(tiny_qwen2_5_omni), device="cpu", dtype="bf16")
    assert backbone.dtype == torch.bfloat16 and workers.shares_encoders(backbone)
    call, arrays, key, outputs = _prepared_in_worker(backbone, backbone.model, clip_av)
    received = encoded.from_numpy(outputs)
    assert received["video"].pooler_output[0].dtype == torch.bfloat16
    job = Job(call.request, SamplingParams(max_new_tokens=8), workers._tensors(arrays), key, encoded=received)
    engine = HFEngine(backbone)
    expected = engine.generate(
        [Request(load_clip(clip_av, frames=4), "Why?")], SamplingParams(max_new_tokens=8)
    )
    assert engine.complete([job])[0][0].text == expected[0]
