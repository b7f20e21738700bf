"""GRPO on tiny omni backbones: through the CLI, towers in every pass, zero-variance warning, resume, QLoRA (gpu)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from affectreason.cli import main
from affectreason.synth import write_emotion_clip

FAMILIES = ("happy", "sad", "angry", "surprised")


def write_labels(folder: Path, count: int = 4) -> Path:
    """A caption file of synthetic emotion clips (video + audio, emotion carried by the signal)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["video,emotions"]
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        write_emotion_clip(folder / f"c{i}.mp4", family, seed=i, duration=1.0, fps=4, size=(32, 32))
        lines.append(f"c{i}.mp4,{family}")
    path = folder / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_recipe(path: Path, method: str, model: Path, data: Path, out: Path, **fields) -> Path:
    """A recipe file: our sections plus trl config fields at the top level (`fields` adds or replaces some)."""
    recipe = {
        "method": method,
        "model": {"name_or_path": str(model), "dtype": "float32"},
        "data": {"path": str(data), "frames": 2},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "output_dir": str(out),
        "max_steps": 2,
        "learning_rate": 1e-3,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "activation_checkpointing": False,
        "save_steps": 1,
        "logging_steps": 1,
        "dataloader_num_workers": 0,
        "report_to": "none",
        **fields,
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


GRPO_FIELDS = {
    "rewards": {"funcs": ["emotion_wheel", "format", "length_penalty"]},
    "num_generations": 4,
    "max_completion_length": 12,
    "beta": 0.1,
    "reward_weights": [1.0, 0.5, 0.1],
}


@pytest.mark.parametrize("family_fixture", ["tiny_qwen2_5_omni", "tiny_qwen3_omni"])
def test_grpo_cli_and_resume(family_fixture, request, tmp_path):
    model = request.getfixturevalue(family_fixture)
    labels = write_labels(tmp_path / "data")
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "grpo.yaml", "grpo", model, labels, out, **GRPO_FIELDS)
    assert main(["train", "grpo", str(recipe)]) == 0
    assert (out / "adapter_config.json").is_file() and (out / "README.md").is_file()
    curves = json.loads((out / "reward_curves.json").read_text())
    for key in (
        "rewards/emotion_wheel/mean",
        "rewards/format/mean",
        "reward_group_std",
        "kl",
        "completions/parse_rate",
    ):
        assert len(curves[key]) == 2, key
    assert "curve rewards/emotion_wheel/mean" in (out / "README.md").read_text()
    assert (out / "checkpoint-2").is_dir()
    if family_fixture == "tiny_qwen2_5_omni":  # resume: one more step on top of checkpoint-2
        assert main(["train", "grpo", str(recipe), "max_steps=3", "resume_from_checkpoint=auto"]) == 0
        state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
        assert state["global_step"] == 3
        assert [row["step"] for row in state["log_history"] if "reward" in row] == [1, 2, 3]
        # from an existing adapter (as after SFT): trained further, a frozen copy is the KL reference
        more = ["max_steps=1", f"model.adapter={out}", f"output_dir={tmp_path / 'run2'}"]
        assert main(["train", "grpo", str(recipe), *more]) == 0
        assert (tmp_path / "run2" / "adapter_config.json").is_file()


def _trainer(model: Path, labels: Path, out: Path, rewards: list[str], trainer_cls=None, **more):
    """A GRPO trainer built the way `train grpo` builds it (one step, 8-token completions); `more` adds trl
    fields to the recipe."""
    import datasets

    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.config import load_recipe
    from affectreason.train.data import load_captions
    from affectreason.train.grpo import reward_functions, rl_rows
    from affectreason.train.grpo_trainer import MultimodalGRPOTrainer
    from affectreason.train.sft import load_training_backbone

    fields = {**GRPO_FIELDS, "rewards": {"funcs": rewards}, "reward_weights": [1.0] * len(rewards), **more}
    path = write_recipe(out.parent / "r.yaml", "grpo", model, labels, out, **fields)
    recipe = load_recipe(path, ["max_steps=1", "max_completion_length=8"])
    backbone = load_training_backbone(recipe)
    args = recipe.trainer_args()
    args.generation_kwargs = {"suppress_tokens": backbone.suppress_token_ids()}
    cls = trainer_cls or MultimodalGRPOTrainer
    return backbone, cls(
        model=backbone.model,
        args=args,
        reward_funcs=reward_functions(recipe),
        train_dataset=datasets.Dataset.from_list(rl_rows(load_captions(labels), "Describe the emotion.")),
        processing_class=backbone.processor,
        backbone=backbone,
        collator=MultimodalCollator(backbone, recipe.data, prompt="Describe the emotion.", response_key=None),
    )


def test_towers_run_in_generation_reference_and_policy_passes(tiny_qwen2_5_omni, tmp_path):
    from trl.distributed import DistributedBackend

    from affectreason.train.grpo_trainer import MultimodalGRPOTrainer

    calls: list[tuple[str, str]] = []

    class Recording(MultimodalGRPOTrainer):
        """Tags each tower call with the pass it happened in."""

        phase, in_loss = "other", False

        def _generate_single_turn(self, *args, **kwargs):
            self.phase = "generate"
            try:
                return super()._generate_single_turn(*args, **kwargs)
            finally:
                self.phase = "other"

        def _compute_loss(self, *args, **kwargs):
            self.in_loss = True
            try:
                return super()._compute_loss(*args, **kwargs)
            finally:
                self.in_loss = False

        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            self.phase = "policy" if self.in_loss else "reference"
            try:
                return super()._get_per_token_logps_and_entropies(*args, **kwargs)
            finally:
                self.phase = "other"

    class SummonRecording(DistributedBackend):
        """trl's backend, noting the phase in which FSDP v1 parameters are summoned (a no-op off FSDP)."""

        def summon_full_params(self, module, **kwargs):
            calls.append((trainer.phase, "summon"))
            return super().summon_full_params(module, **kwargs)

    labels = write_labels(tmp_path / "data")
    backbone, trainer = _trainer(tiny_qwen2_5_omni, labels, tmp_path / "run", ["length_penalty"], Recording)
    trainer._dist = SummonRecording(trainer.accelerator)
    for name, module in backbone.tower_modules().items():
        module.register_forward_hook(lambda *_, name=name: calls.append((trainer.phase, name)))
    trainer.train()
    for phase in ("generate", "reference", "policy"):
        for tower in ("vision", "audio"):
            assert (phase, tower) in calls, (phase, tower, calls)
    assert ("other", "vision") not in calls
    assert ("generate", "summon") in calls  # FSDP v1: HF generation sees full parameters, as in trl


def test_vllm_rollouts_carry_each_rows_media_through_trls_path(tiny_qwen2_5_omni, tmp_path):
    from affectreason.backbones.base import load_backbone
    from affectreason.engines.base import Request
    from affectreason.media import load_clip
    from affectreason.train.grpo_trainer import VLLMRow, vllm_prompt, vllm_suppression

    labels = write_labels(tmp_path / "data", count=1)
    backbone = load_backbone(str(tiny_qwen2_5_omni), load_model=False)
    clip = load_clip(labels.parent / "c0.mp4", frames=2)
    entry = backbone.vllm_inputs(Request(clip, "Describe."))
    assert entry["multi_modal_data"]["video"].shape[0] == 2
    audio, rate = entry["multi_modal_data"]["audio"]
    assert rate == 16000 and len(audio) == len(clip.audio)
    kwargs = entry["mm_processor_kwargs"]
    assert kwargs["use_audio_in_video"] is True and "Describe." in entry["prompt"]
    hf = backbone.video_kwargs(clip.frames, kwargs["fps"])  # the frames vLLM sees are the frames HF scores
    assert kwargs["size"] == hf["size"] and kwargs["do_sample_frames"] is False
    # trl's colocate path wraps each row's image slot as {"image": ...}; ours comes back out unchanged
    trl_row = {"prompt_token_ids": [1, 2], "multi_modal_data": {"image": VLLMRow(entry)}}
    assert vllm_prompt(trl_row) is entry
    assert vllm_prompt({"prompt_token_ids": [1, 2]}) == {"prompt_token_ids": [1, 2]}
    bias = vllm_suppression(backbone.suppress_token_ids())["logit_bias"]
    assert set(bias) == set(backbone.suppress_token_ids()) and set(bias.values()) == {-100.0}


def test_zero_reward_variance_warns(tiny_qwen2_5_omni, tmp_path):
    from affectreason.train.grpo_trainer import RewardVarianceWarning

    labels = write_labels(tmp_path / "data")
    # A random model never writes the tagged format, so `format` is 0 for every completion.
    _, trainer = _trainer(tiny_qwen2_5_omni, labels, tmp_path / "run", ["format"])
    with pytest.warns(RewardVarianceWarning, match="identical rewards"):
        trainer.train()


def test_grpo_recipe_errors_are_one_line(tiny_qwen2_5_omni, tmp_path, capsys):
    labels = write_labels(tmp_path / "data", count=1)
    bad = {**GRPO_FIELDS, "reward_weights": [1.0]}
    recipe = write_recipe(tmp_path / "g.yaml", "grpo", tiny_qwen2_5_omni, labels, tmp_path / "o", **bad)
    assert main(["train", "grpo", str(recipe)]) == 2
    assert "reward_weights: 1 weights for 3 rewards.funcs" in capsys.readouterr().err
    assert main(["train", "grpo", str(recipe), "rewards.funcs=[nope]", "reward_weights=[1]"]) == 2
    err = capsys.readouterr().err
    assert "unknown reward 'nope'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.gpu
def test_qlora_grpo_on_gpu(tiny_qwen2_5_omni, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    labels = write_labels(tmp_path / "data")
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "grpo.yaml", "grpo", tiny_qwen2_5_omni, labels, out, **GRPO_FIELDS)
    assert main(["train", "grpo", str(recipe), "model.quantization=4bit", "model.dtype=bfloat16"]) == 0
    assert (out / "adapter_config.json").is_file()


def write_mixed_labels(folder: Path) -> Path:
    """An audio-in-video clip, a silent video and an audio-only file, as in MELD or MER2023."""
    from affectreason.synth import write_audio, write_clip

    folder.mkdir(parents=True, exist_ok=True)
    write_emotion_clip(folder / "av.mp4", "happy", seed=0, duration=1.0, fps=4, size=(32, 32))
    write_clip(folder / "silent.mp4", audio=False, duration=1.0, fps=4, size=(32, 32))
    write_audio(folder / "voice.wav", duration=1.0)
    path = folder / "labels.csv"
    path.write_text("video,audio,emotions\nav.mp4,,happy\nsilent.mp4,,sad\n,voice.wav,angry\n")
    return path


MIXED_FIELDS = {**GRPO_FIELDS, "num_generations": 2}


@pytest.mark.parametrize("family_fixture", ["tiny_qwen2_5_omni", "tiny_qwen3_omni"])
def test_grpo_silent_audio_only_and_mixed_rows(family_fixture, request, tmp_path):
    """One generation batch holds all three row shapes; every pass sees the media each row really has."""
    model = request.getfixturevalue(family_fixture)
    labels = write_mixed_labels(tmp_path / "data")
    out = tmp_path / "run"
    recipe_path = write_recipe(tmp_path / "grpo.yaml", "grpo", model, labels, out, **MIXED_FIELDS)
    # 6 completion rows per generation, split over 2 accumulation steps and reused for a second iteration
    overrides = ["per_device_train_batch_size=3", "gradient_accumulation_steps=2", "num_iterations=2"]
    assert main(["train", "grpo", str(recipe_path), *overrides, "max_steps=2"]) == 0
    assert (out / "adapter_config.json").is_file()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2

    # The production trainer: the features ride in trl's batch, one entry per completion row, aligned.
    from affectreason.train.config import load_recipe
    from affectreason.train.grpo import build_grpo_trainer

    trainer, backbone, _ = build_grpo_trainer(load_recipe(str(recipe_path), [*overrides, "max_steps=1"]))
    rows = next(iter(trainer.get_train_dataloader()))
    batch = trainer._generate_and_score_completions(rows)
    features = batch["mm_features"]
    assert len(features) == len(rows) == batch["completion_ids"].size(0)
    assert len({id(f) for f in features}) == 3  # each clip decoded and processed once per generation batch
    videos = [f for f in features if "pixel_values_videos" in f]
    assert videos and all(f["use_audio_in_video"] for f in videos)  # one video layout per batch
    by_media = {row["video"] or row["audio"]: f for row, f in zip(rows, features, strict=True)}
    silent = next(f for m, f in by_media.items() if m.endswith("silent.mp4"))
    voice = next(f for m, f in by_media.items() if m.endswith("voice.wav"))
    assert "input_features" in silent and "pixel_values_videos" in silent  # a silent track beside its frames
    assert "pixel_values_videos" not in voice and "input_features" in voice
    for name in ("_cache", "_rows", "_row_index"):  # nothing per row outlives the batch on the trainer
        assert not hasattr(trainer, name), name
