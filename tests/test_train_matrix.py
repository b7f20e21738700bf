"""Every training method on every family through the CLI: sft, grpo, dpo and `data pairs` on tiny models.

Each run is one or two steps on a tiny model (the whole module takes about 35 s on 2 idle cores); SFT checks the
LoRA scope on every family by reading back the adapter a run wrote. GRPO on the omni families, with silent,
audio-only and mixed batches, is in `test_grpo.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from test_dpo import write_pairs
from test_grpo import GRPO_FIELDS, write_labels, write_mixed_labels, write_recipe

from affectreason.cli import main

FAMILIES = ["tiny_qwen2_5_omni", "tiny_qwen3_omni", "tiny_qwen_vl", "tiny_llava"]
VIDEO_ONLY = ["tiny_qwen_vl", "tiny_llava"]


def adapted_modules(run: Path) -> set[str]:
    """The module names that carry LoRA weights in the adapter a run saved."""
    with safe_open(str(run / "adapter_model.safetensors"), "pt") as handle:
        names = list(handle.keys())
    assert names, "the adapter holds no weights"
    return {name.split(".lora_")[0] for name in names}


@pytest.mark.parametrize("family_fixture", FAMILIES)
def test_sft_adapts_the_language_model_only(family_fixture, request, tmp_path):
    """One batch mixes a clip with sound, a silent video and an audio-only file."""
    model = request.getfixturevalue(family_fixture)
    labels = write_mixed_labels(tmp_path / "data")
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "sft.yaml", "sft", model, labels, out)
    assert main(["train", "sft", str(recipe), "max_steps=1", "per_device_train_batch_size=3"]) == 0
    modules = adapted_modules(out)
    outside = sorted(m for m in modules if ".language_model." not in m)
    assert not outside, outside[:5]
    kinds = {m.rsplit(".", 1)[-1] for m in modules}
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= kinds, kinds
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["exclude_modules"], "the towers must be excluded whatever peft makes of the targets"


@pytest.mark.parametrize("family_fixture", VIDEO_ONLY)
def test_grpo_on_video_only_families(family_fixture, request, tmp_path):
    model = request.getfixturevalue(family_fixture)
    labels = write_labels(tmp_path / "data", count=2)
    out = tmp_path / "run"
    section = {**GRPO_FIELDS, "num_generations": 2}
    recipe = write_recipe(tmp_path / "grpo.yaml", "grpo", model, labels, out, **section)
    assert main(["train", "grpo", str(recipe), "max_steps=1"]) == 0
    assert (out / "reward_curves.json").is_file()
    assert not {m for m in adapted_modules(out) if ".language_model." not in m}


@pytest.mark.parametrize("family_fixture", VIDEO_ONLY)
def test_dpo_on_video_only_families(family_fixture, request, tmp_path):
    model = request.getfixturevalue(family_fixture)
    pairs = write_pairs(tmp_path / "data", count=2)
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "dpo.yaml", "dpo", model, pairs, out, beta=0.1)
    assert main(["train", "dpo", str(recipe), "max_steps=1", "per_device_train_batch_size=2"]) == 0
    assert (out / "adapter_config.json").is_file()


@pytest.mark.parametrize("family_fixture", FAMILIES)
def test_data_pairs_then_dpo(family_fixture, request, tmp_path):
    """`data pairs` samples and scores responses; the pairs it writes train DPO on the same family."""
    model = request.getfixturevalue(family_fixture)
    labels = write_labels(tmp_path / "data", count=2)
    pairs = tmp_path / "pairs.jsonl"
    args = ["data", "pairs", str(model), str(labels), "--out", str(pairs), "--n", "3", "--margin", "-1"]
    assert main([*args, "--max-new-tokens", "8", "--frames", "2"]) == 0
    assert len(pairs.read_text().splitlines()) == 2
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "dpo.yaml", "dpo", model, pairs, out, beta=0.1)
    assert main(["train", "dpo", str(recipe), "max_steps=1", "per_device_train_batch_size=2"]) == 0
    assert (out / "adapter_config.json").is_file()


def test_qwen3_omni_refuses_4bit_in_one_line(tiny_qwen3_omni, tmp_path, capsys):
    """bitsandbytes quantises nn.Linear only: the fused MoE experts would stay in full precision."""
    labels = write_labels(tmp_path / "data", count=2)
    recipe = write_recipe(tmp_path / "sft.yaml", "sft", tiny_qwen3_omni, labels, tmp_path / "run")
    assert main(["train", "sft", str(recipe), "model.quantization=4bit"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "experts" in err and "4bit" in err
    from affectreason.train.config import list_recipes

    assert not [name for name, _ in list_recipes() if name.startswith("qwen3_omni") and "qlora" in name]


def test_4bit_load_quantises_every_language_model_linear(tiny_qwen2_5_omni):
    """Parameter bytes by dtype after a 4-bit load: the language model's projections are packed 4-bit."""
    from affectreason.backbones import load_backbone

    backbone = load_backbone(str(tiny_qwen2_5_omni), quantization="4bit", dtype="float32", device="cpu")
    by_dtype: dict[str, int] = {}
    for name, param in backbone.model.named_parameters():
        if ".language_model.layers." in name:
            key = str(param.dtype)
            by_dtype[key] = by_dtype.get(key, 0) + param.numel() * param.element_size()
    assert by_dtype.get("torch.uint8", 0) > 0
    float_bytes = sum(v for k, v in by_dtype.items() if k != "torch.uint8")
    assert float_bytes < by_dtype["torch.uint8"], by_dtype  # only norms stay in float


@pytest.mark.parametrize("family_fixture", ["tiny_qwen2_5_omni", "tiny_qwen3_omni"])
def test_dpo_on_silent_audio_only_and_mixed_pairs(family_fixture, request, tmp_path):
    from affectreason.rationale import Rationale, render_canonical

    model = request.getfixturevalue(family_fixture)
    labels = write_mixed_labels(tmp_path / "data")
    rows = []
    for line in labels.read_text().splitlines()[1:]:
        video, audio, emotion = line.split(",")
        chosen = render_canonical(Rationale(emotions=[emotion], reasoning="tone and colour"))
        rows.append({"video": video or None, "audio": audio or None, "chosen": chosen, "rejected": "no idea"})
    pairs = labels.parent / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "dpo.yaml", "dpo", model, pairs, out, beta=0.1)
    assert main(["train", "dpo", str(recipe), "max_steps=1", "per_device_train_batch_size=3"]) == 0
    assert not {m for m in adapted_modules(out) if ".language_model." not in m}


def test_validate_refuses_4bit_on_qwen3_omni_without_loading_it(tiny_qwen3_omni, tiny_qwen2_5_omni, capsys):
    """`recipes validate` knows the family from the local config.json or the published hub id, torch-free."""
    for model in ("Qwen/Qwen3-Omni-30B-A3B-Instruct", str(tiny_qwen3_omni)):
        args = ["recipes", "validate", "qwen3_omni_30b_a3b/sft_lora", f"model.name_or_path={model}"]
        assert main([*args, "model.quantization=4bit"]) == 2
        err = capsys.readouterr().err
        assert "model.quantization: qwen3_omni_moe" in err and "fused 3-D parameters" in err, err
    args = ["recipes", "validate", "qwen2_5_omni_3b/sft_qlora", f"model.name_or_path={tiny_qwen2_5_omni}"]
    assert main(args) == 0, capsys.readouterr().err


@pytest.mark.parametrize("method", ["grpo", "dpo"])
def test_eval_during_rl_logs_emotion_wheel_f1(method, tiny_qwen2_5_omni, tmp_path):
    """GRPO (eval captions) and DPO (eval pairs, the chosen answer as reference) log EW-F1 every eval_steps."""
    if method == "grpo":
        data = write_labels(tmp_path / "data", count=2)
        fields = {**GRPO_FIELDS, "num_generations": 2}
        batch = ["per_device_train_batch_size=2", "per_device_eval_batch_size=2"]
    else:
        data = write_pairs(tmp_path / "data", count=2)
        fields = {"beta": 0.1}
        batch = ["per_device_train_batch_size=2", "per_device_eval_batch_size=2"]
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / f"{method}.yaml", method, tiny_qwen2_5_omni, data, out, **fields)
    overrides = [f"data.eval_path={data}", "eval_steps=1", "data.eval_max_new_tokens=4", "save_steps=2"]
    assert main(["train", method, str(recipe), *overrides, *batch, "max_steps=2"]) == 0
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logged = [row for row in state["log_history"] if "eval_ew_f1" in row]
    assert {row["step"] for row in logged} == {1, 2}  # every eval_steps
    for row in logged:
        for key in ("eval_ew_f1", "eval_hit_rate", "eval_parse_rate"):
            assert 0.0 <= row[key] <= 1.0, (key, row)
