"""The vLLM engine: its input form, engine/sampling arguments and `vllm serve` flags on CPU; generation on a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectreason.backbones.base import load_backbone
from affectreason.engines.base import Request, SamplingParams
from affectreason.engines.vllm import (
    VLLMEngine,
    adapter_rank,
    llm_kwargs,
    lora_rank_bound,
    merged_dir,
    serve_command,
    vllm_available,
)
from affectreason.errors import AffectReasonError
from affectreason.media import load_clip

PROMPT = "Describe the emotion."


@pytest.fixture(scope="module")
def processor_only(tiny_qwen2_5_omni):
    return load_backbone(str(tiny_qwen2_5_omni), load_model=False)


@pytest.fixture(scope="module")
def adapter(tiny_qwen2_5_omni, tmp_path_factory) -> Path:
    """A real peft LoRA adapter (rank 12) on the tiny thinker's language model."""
    from peft import LoraConfig, get_peft_model

    backbone = load_backbone(str(tiny_qwen2_5_omni), device="cpu")
    config = LoraConfig(
        r=12, lora_alpha=24, target_modules=backbone.lora_target_modules, task_type="CAUSAL_LM"
    )
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(backbone.model, config).save_pretrained(out)
    return out


@pytest.mark.parametrize("family", ["tiny_qwen2_5_omni", "tiny_qwen3_omni"])
def test_audio_in_video_form_matches_vllms_omni_example(request, family, clip_av):
    """vLLM's documented offline form: one video placeholder in the prompt, frames as a uint8 array, the
    audio track as (array, 16000), and `use_audio_in_video` in `mm_processor_kwargs`."""
    backbone = load_backbone(str(request.getfixturevalue(family)), load_model=False)
    clip = load_clip(clip_av, frames=6)
    inputs = backbone.vllm_inputs(Request(clip, PROMPT))
    video_token, audio_token = backbone.processor.video_token, backbone.processor.audio_token
    assert inputs["prompt"].count(video_token) == 1 and audio_token not in inputs["prompt"]
    assert inputs["prompt"].rstrip().endswith("assistant") and PROMPT in inputs["prompt"]
    frames = inputs["multi_modal_data"]["video"]
    assert frames.dtype == np.uint8 and frames.shape == clip.frames.shape
    audio, rate = inputs["multi_modal_data"]["audio"]
    assert rate == 16000 and audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == len(clip.audio)
    assert inputs["mm_processor_kwargs"]["use_audio_in_video"] is True
    assert inputs["mm_processor_kwargs"]["fps"] == pytest.approx(
        (6 - 1) / (clip.frame_times[-1] - clip.frame_times[0])
    )


@pytest.mark.parametrize(
    ("fixture", "modalities", "placeholder", "keys"),
    [
        ("clip_silent", {"video", "audio", "text"}, "video", {"video"}),
        ("clip_av", {"video", "text"}, "video", {"video"}),
        ("audio_wav", {"video", "audio", "text"}, "audio", {"audio"}),
        ("clip_av", {"audio", "text"}, "audio", {"audio"}),
    ],
)
def test_single_modality_forms_have_no_audio_in_video(
    processor_only, request, fixture, modalities, placeholder, keys
):
    clip = load_clip(request.getfixturevalue(fixture), frames=4)
    inputs = processor_only.vllm_inputs(Request(clip, PROMPT, modalities=frozenset(modalities)))
    token = getattr(processor_only.processor, f"{placeholder}_token")
    assert inputs["prompt"].count(token) == 1
    assert set(inputs["multi_modal_data"]) == keys
    assert not inputs.get("mm_processor_kwargs", {}).get("use_audio_in_video")


def test_transcript_reaches_the_vllm_prompt_only_with_the_text_modality(processor_only, clip_av):
    clip = load_clip(clip_av, frames=2, transcript="so happy for you")
    with_text = processor_only.vllm_inputs(Request(clip, PROMPT))["prompt"]
    without = processor_only.vllm_inputs(Request(clip, PROMPT, modalities=frozenset({"video", "audio"})))[
        "prompt"
    ]
    assert "so happy for you" in with_text and "so happy for you" not in without


def test_llm_kwargs_limit_one_clip_per_prompt_and_enable_lora_only_with_adapters():
    plain = llm_kwargs("m", enable_lora=False, native_audio=True, dtype="bf16", max_model_len=8192)
    assert plain["limit_mm_per_prompt"] == {"image": 0, "video": 1, "audio": 1}
    assert plain["dtype"] == "bfloat16" and plain["max_model_len"] == 8192 and "enable_lora" not in plain
    assert plain["generation_config"] == "vllm"  # the checkpoint's sampling knobs are not merged in
    lora = llm_kwargs("m", enable_lora=True, native_audio=False, max_lora_rank=16, tensor_parallel_size=2)
    assert lora["enable_lora"] is True and lora["max_lora_rank"] == 16 and lora["tensor_parallel_size"] == 2
    assert lora["limit_mm_per_prompt"]["audio"] == 0
    with pytest.raises(AffectReasonError, match="unknown dtype"):
        llm_kwargs("m", enable_lora=False, native_audio=True, dtype="int3")


def test_adapter_rank_and_vllm_rank_bound(adapter, tmp_path):
    assert adapter_rank(adapter) == 12
    assert lora_rank_bound([12]) == 16 and lora_rank_bound([8, 64]) == 64 and lora_rank_bound([]) == 8
    with pytest.raises(AffectReasonError, match="not a peft adapter"):
        adapter_rank(tmp_path)
    with pytest.raises(AffectReasonError, match="above"):
        lora_rank_bound([1024])


def test_serve_command_carries_lora_limits_media_dir_and_parallelism(adapter, tmp_path):
    args = serve_command(
        "Qwen/Qwen2.5-Omni-7B",
        adapters={"emo": str(adapter)},
        port=8123,
        api_key="k",
        tensor_parallel_size=2,
        data_parallel_size=4,
        media_dir=tmp_path,
        max_model_len=16384,
    )
    assert args[:3] == ["vllm", "serve", "Qwen/Qwen2.5-Omni-7B"]

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert value("--host") == "127.0.0.1" and value("--port") == "8123" and value("--api-key") == "k"
    assert value("--tensor-parallel-size") == "2" and value("--data-parallel-size") == "4"
    assert json.loads(value("--limit-mm-per-prompt")) == {"image": 0, "video": 1, "audio": 1}
    assert json.loads(value("--media-io-kwargs")) == {"video": {"num_frames": -1}}
    assert value("--generation-config") == "vllm"  # unset request fields never take the checkpoint's knobs
    assert "--enable-lora" in args and value("--max-lora-rank") == "16"
    assert value("--lora-modules") == f"emo={adapter.resolve()}"
    assert value("--allowed-local-media-path") == str(tmp_path.resolve())
    assert value("--served-model-name") == "Qwen/Qwen2.5-Omni-7B" and value("--max-model-len") == "16384"
    plain = serve_command("m", served_model_name="emo-base")
    assert "--enable-lora" not in plain and "--api-key" not in plain and "--data-parallel-size" not in plain


def test_merged_dir_is_keyed_by_model_and_adapter(adapter, tmp_path):
    assert merged_dir("a", str(adapter), tmp_path) == merged_dir("a", str(adapter), tmp_path)
    assert merged_dir("a", str(adapter), tmp_path) != merged_dir("b", str(adapter), tmp_path)


def test_offline_data_parallelism_points_to_the_server(tiny_qwen2_5_omni):
    with pytest.raises(AffectReasonError, match="--data-parallel-size N"):
        VLLMEngine(str(tiny_qwen2_5_omni), data_parallel_size=2)


@pytest.mark.skipif(vllm_available(), reason="vllm is installed")
def test_engine_without_vllm_is_a_one_line_error(tiny_qwen2_5_omni):
    with pytest.raises(AffectReasonError, match=r"pip install -e \"\.\[vllm\]\""):
        VLLMEngine(str(tiny_qwen2_5_omni))


@pytest.mark.gpu
def test_vllm_engine_generates_for_video_audio_and_adapter(tiny_qwen2_5_omni, adapter, clip_av, audio_wav):
    pytest.importorskip("vllm")
    engine = VLLMEngine(
        str(tiny_qwen2_5_omni), adapter=f"emo={adapter}", gpu_memory_utilization=0.3, max_model_len=4096
    )
    requests = [
        Request(load_clip(clip_av, frames=4), PROMPT),
        Request(load_clip(audio_wav, frames=None), PROMPT),
    ]
    texts = engine.generate(requests, SamplingParams(max_new_tokens=8))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    sampled = engine.generate(
        requests[:1], SamplingParams(temperature=1.0, max_new_tokens=8, num_return_sequences=3)
    )
    assert len(sampled) == 3
