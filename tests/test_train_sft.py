"""`affectreason train sft` end to end on tiny random backbones: loss, LoRA-only updates, resume, describe, merge,
QLoRA (8-bit and 4-bit) on CPU, and the artifacts a run leaves."""

import csv
import json
import shutil

import pytest
import torch

from affectreason.cli import main
from affectreason.engines.base import Request
from affectreason.media import load_clip
from affectreason.train.config import build_recipe

FAST = [
    "data.frames=2",
    "dataloader_num_workers=0",
    "lora.r=4",
    "lora.dropout=0.0",  # no dropout masks: a continued run reproduces the original's losses
    "learning_rate=0.02",
    "per_device_train_batch_size=2",
    "gradient_accumulation_steps=1",
    "logging_steps=1",
    "warmup_steps=0",
    "lr_scheduler_type=constant",
    "report_to=none",
]


@pytest.fixture(scope="module")
def captions(tmp_path_factory, clip_av, clip_silent):
    """Two clips (with and without audio) = one repeated batch of two."""
    root = tmp_path_factory.mktemp("captions")
    shutil.copy(clip_av, root / "a.mp4")
    shutil.copy(clip_silent, root / "b.mp4")
    path = root / "captions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "caption", "emotions", "subtitle"])
        writer.writerow(["a.mp4", "She laughs with a bright voice.", "happy, excited", "We won!"])
        writer.writerow(["b.mp4", "He looks down without a word.", "sad", ""])
    return path


def _recipe_file(tmp_path, model):
    path = tmp_path / "my_sft.yaml"
    path.write_text(f"method: sft\nmodel:\n  name_or_path: {model}\n")
    return path


def _losses(run_dir):
    state = json.loads((run_dir / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_qwen2_5_omni, captions):
    """4 steps through the CLI, a checkpoint every 2."""
    root = tmp_path_factory.mktemp("sft")
    out = root / "run"
    code = main(
        [
            "train",
            "sft",
            str(_recipe_file(root, tiny_qwen2_5_omni)),
            f"data.path={captions}",
            f"output_dir={out}",
        ]
        + FAST
        + ["max_steps=4", "save_steps=2"]
    )
    assert code == 0
    return out


def test_loss_decreases_on_a_repeated_batch(first_run):
    losses = _losses(first_run / "checkpoint-4")
    assert sorted(losses) == [1, 2, 3, 4]
    assert losses[4] < losses[1]


def test_run_leaves_adapter_processor_card_and_manifest(first_run, tiny_qwen2_5_omni, captions):
    names = {p.name for p in first_run.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "processor_config.json",
        "tokenizer.json",
    } <= names
    assert {"README.md", "run_manifest.json", "checkpoint-2", "checkpoint-4"} <= names
    config = json.loads((first_run / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_qwen2_5_omni) and config["r"] == 4

    card = (first_run / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n") and "- qwen2_5_omni" in card
    assert "| rows | 2 |" in card and "train_loss" in card and "learning_rate: 0.02" in card

    manifest = json.loads((first_run / "run_manifest.json").read_text())
    assert manifest["recipe"]["max_steps"] == 4 and manifest["family"] == "qwen2_5_omni"
    assert (
        manifest["trainer_args"]["max_steps"] == 4
        and manifest["trainer_args"]["remove_unused_columns"] is False
    )
    assert manifest["data"]["rows"] == 2 and len(manifest["data"]["sha256"]) == 64
    assert (
        manifest["versions"]["trl"] and manifest["versions"]["peft"] and manifest["metrics"]["train_loss"] > 0
    )
    assert manifest["git"] is None or len(manifest["git"]["commit"]) == 40


def test_resume_continues_from_the_checkpoint_with_the_same_losses(
    first_run, tiny_qwen2_5_omni, captions, tmp_path
):
    out = tmp_path / "resumed"
    shutil.copytree(first_run / "checkpoint-2", out / "checkpoint-2")
    code = main(
        [
            "train",
            "sft",
            str(_recipe_file(tmp_path, tiny_qwen2_5_omni)),
            f"data.path={captions}",
            f"output_dir={out}",
        ]
        + FAST
        + ["max_steps=4", "save_steps=2", "resume_from_checkpoint=auto"]
    )
    assert code == 0
    original, resumed = _losses(first_run / "checkpoint-4"), _losses(out / "checkpoint-4")
    assert json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["global_step"] == 4
    for step in (3, 4):
        assert resumed[step] == pytest.approx(original[step], rel=1e-4, abs=1e-4)


def test_adapter_loads_in_describe_and_refuses_another_base(
    first_run, tiny_qwen2_5_omni, tiny_qwen3_omni, clip_av, capsys
):
    args = [
        "describe",
        str(clip_av),
        "--adapter",
        str(first_run),
        "--format",
        "json",
        "--max-new-tokens",
        "4",
    ]
    code = main([*args, "--model", str(tiny_qwen2_5_omni), "--frames", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out)
    record = record[0] if isinstance(record, list) else record
    assert record["adapter"] == str(first_run)

    code = main([*args, "--model", str(tiny_qwen3_omni), "--frames", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "adapter" in err and len(err.strip().splitlines()) == 1


def test_merge_writes_a_standalone_checkpoint_with_the_adapter_folded_in(
    first_run, tiny_qwen2_5_omni, clip_av, tmp_path
):
    from affectreason.backbones.base import load_backbone

    merged_dir = tmp_path / "merged"
    assert main(["merge", str(first_run), "--out", str(merged_dir)]) == 0
    assert not (merged_dir / "adapter_config.json").exists()
    assert json.loads((merged_dir / "run_manifest.json").read_text())["merged"]["base_model"] == str(
        tiny_qwen2_5_omni
    )

    clip = load_clip(clip_av, frames=2)
    logits = {}
    for name, kwargs in {
        "merged": {"model": str(merged_dir)},
        "adapter": {"model": str(tiny_qwen2_5_omni), "adapter": str(first_run)},
        "base": {"model": str(tiny_qwen2_5_omni)},
    }.items():
        backbone = load_backbone(kwargs.pop("model"), device="cpu", **kwargs)
        batch = backbone.build_inputs([Request(clip=clip, prompt="How does she feel?")])
        with torch.no_grad():
            logits[name] = backbone.model(**batch).logits
    assert torch.allclose(logits["merged"], logits["adapter"], atol=1e-4)
    assert not torch.allclose(logits["merged"], logits["base"], atol=1e-4)

    assert main(["merge", str(first_run), "--out", str(merged_dir)]) == 2  # not empty: refused


def test_only_lora_parameters_of_the_language_model_change(tiny_qwen2_5_omni, captions, tmp_path):
    from affectreason.train.sft import build_sft_trainer

    recipe = build_recipe(
        {"method": "sft", "model": {"name_or_path": str(tiny_qwen2_5_omni)}},
        [f"data.path={captions}", f"output_dir={tmp_path / 'run'}", "max_steps=2", *FAST],
    )
    trainer, backbone, _ = build_sft_trainer(recipe)
    model = backbone.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and ".language_model.layers." in n for n in trainable)
    tower_params = {
        f"{name}:{n}": p
        for name, tower in backbone.tower_modules().items()
        for n, p in tower.named_parameters()
    }
    assert tower_params and not any("lora_" in n for n in tower_params)  # towers carry no adapters
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and changed <= trainable
    assert any("lora_B" in n for n in changed)
    assert all(not p.requires_grad for p in tower_params.values())


@pytest.mark.parametrize(
    ("family", "quantization"), [("tiny_qwen_vl", "8bit"), ("tiny_qwen2_5_omni", "4bit")]
)
def test_qlora_on_cpu_for_another_family(family, quantization, captions, tmp_path, request):
    """8-bit LoRA on the video-only Qwen-VL family (textualised audio), 4-bit QLoRA on Qwen2.5-Omni (fresh load)."""
    model = request.getfixturevalue(family)
    out = tmp_path / "run"
    code = main(
        ["train", "sft", str(_recipe_file(tmp_path, model)), f"data.path={captions}", f"output_dir={out}"]
        + FAST
        + ["max_steps=2", "save_steps=100", f"model.quantization={quantization}"]
    )
    assert code == 0
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["recipe"]["model"]["quantization"] == quantization
    assert manifest["metrics"]["train_loss"] > 0
    assert (out / "adapter_model.safetensors").is_file()


def test_bad_training_inputs_are_one_line_errors(tiny_qwen2_5_omni, captions, tmp_path, capsys):
    recipe = str(_recipe_file(tmp_path, tiny_qwen2_5_omni))
    cases = {
        "no data.path": [],
        "data validate": [f"data.path={tmp_path / 'missing.csv'}"],
        "not a checkpoint folder": [f"data.path={captions}", f"resume_from_checkpoint={tmp_path}"],
        "did you mean 'max_steps'": [f"data.path={captions}", "max_step=3"],
    }
    for expected, overrides in cases.items():
        code = main(["train", "sft", recipe, *overrides])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert expected in err or (expected == "data validate" and "not found" in err)


def test_report_to_auto_and_resume_resolution(tmp_path, monkeypatch):
    from affectreason.train.artifacts import resume_checkpoint
    from affectreason.train.config import auto_loggers, load_recipe

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert auto_loggers() == ["tensorboard"]  # tensorboard is a dev dependency; wandb needs configuring
    args = load_recipe("qwen2_5_omni_3b/sft_lora", [f"output_dir={tmp_path / 'run'}"]).args
    assert args.report_to == ["tensorboard"]

    auto = build_recipe({"method": "sft"}, [f"output_dir={tmp_path / 'run'}", "resume_from_checkpoint=auto"])
    assert resume_checkpoint(auto) is None  # nothing to resume: a fresh start
    assert resume_checkpoint(build_recipe({"method": "sft"})) is None


def test_training_continues_from_an_existing_adapter(first_run, tiny_qwen2_5_omni, captions, tmp_path):
    out = tmp_path / "continued"
    recipe = str(_recipe_file(tmp_path, tiny_qwen2_5_omni))
    adapter = first_run / "checkpoint-2"
    extra = ["max_steps=1", "save_steps=1", f"model.adapter={adapter}"]
    assert main(["train", "sft", recipe, f"data.path={captions}", f"output_dir={out}", *FAST, *extra]) == 0
    # the adapter saved after step 2 gives the loss the original run logged at step 3
    assert _losses(out / "checkpoint-1")[1] == pytest.approx(_losses(first_run / "checkpoint-4")[3], abs=1e-3)


def test_undecodable_media_in_a_dataloader_worker_is_one_error_line(
    tiny_qwen2_5_omni, truncated_file, tmp_path, capsys
):
    shutil.copy(truncated_file, tmp_path / "cut.mp4")
    path = tmp_path / "captions.csv"
    path.write_text("video,emotions\ncut.mp4,happy\n")
    recipe = str(_recipe_file(tmp_path, tiny_qwen2_5_omni))
    overrides = [
        f"data.path={path}",
        f"output_dir={tmp_path / 'run'}",
        *FAST,
        "dataloader_num_workers=1",
        "max_steps=1",
    ]
    code = main(["train", "sft", recipe, *overrides])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert "error: cannot decode" in err and err.endswith(f"affectreason data validate {path})")


def test_eval_during_training_logs_emotion_wheel_f1(tiny_qwen2_5_omni, captions, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    overrides = [f"data.path={captions}", f"data.eval_path={captions}", f"output_dir={out}", *FAST]
    overrides += ["max_steps=2", "save_steps=100", "eval_steps=1", "data.eval_max_new_tokens=4"]
    overrides += ["report_to=[tensorboard]"]
    assert main(["train", "sft", str(_recipe_file(tmp_path, tiny_qwen2_5_omni)), *overrides]) == 0
    state = json.loads((out / "run_manifest.json").read_text())
    for key in ("eval_ew_f1", "eval_hit_rate", "eval_parse_rate", "eval_loss"):
        assert 0.0 <= state["metrics"][key] and (key == "eval_loss" or state["metrics"][key] <= 1.0), key
    card = (out / "README.md").read_text()
    assert "| eval_ew_f1 |" in card and "| eval_parse_rate |" in card
    logged = [EventAccumulator(str(p)).Reload() for p in (out / "runs").rglob("events.out.tfevents.*")]
    tags = {tag for acc in logged for tag in acc.Tags()["scalars"]}
    assert {"eval/ew_f1", "eval/hit_rate", "eval/parse_rate", "eval/loss"} <= tags
    steps = {
        s.step for acc in logged if "eval/ew_f1" in acc.Tags()["scalars"] for s in acc.Scalars("eval/ew_f1")
    }
    assert {1, 2} <= steps  # every eval_steps, not only at the end


@pytest.mark.parametrize(
    ("overrides", "towers_train", "lm_full"),
    [
        (["model.freeze=[]"], True, False),  # LoRA on the towers too
        (["model.finetuning=full"], False, True),  # every weight but the frozen towers
        (["model.finetuning=full", "model.freeze=[audio]"], "vision", True),
    ],
)
def test_finetuning_scope_switches(overrides, towers_train, lm_full, tiny_qwen2_5_omni, captions, tmp_path):
    from affectreason.train.sft import build_sft_trainer

    recipe = build_recipe(
        {"method": "sft", "model": {"name_or_path": str(tiny_qwen2_5_omni)}},
        [f"data.path={captions}", f"output_dir={tmp_path / 'run'}", "max_steps=1", *FAST, *overrides],
    )
    trainer, backbone, _ = build_sft_trainer(recipe)
    model = backbone.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    towers = backbone.tower_modules()
    for name, tower in towers.items():
        trains = towers_train is True or towers_train == name
        params = list(tower.named_parameters())
        assert any(p.requires_grad for _, p in params) == trains, name
        assert any("lora_" in n for n, _ in params) == (trains and not lm_full), name
    lm_weights = [n for n in changed if ".language_model." in n and "lora_" not in n]
    assert bool(lm_weights) == lm_full


def test_full_finetuning_and_qlora_do_not_mix(capsys):
    code = main(["recipes", "validate", "qwen2_5_omni_3b/sft_qlora", "model.finetuning=full"])
    err = capsys.readouterr().err
    assert code == 2 and "QLoRA stays LoRA-only" in err
    code = main(["recipes", "validate", "qwen2_5_omni_3b/grpo_wheel", "model.finetuning=full"])
    assert code == 2 and "full is for sft" in capsys.readouterr().err


def test_full_finetuning_through_the_cli_writes_a_standalone_model(
    tiny_qwen2_5_omni, captions, tmp_path, clip_av
):
    out = tmp_path / "full"
    overrides = [f"data.path={captions}", f"output_dir={out}", *FAST, "max_steps=1", "model.finetuning=full"]
    assert main(["train", "sft", str(_recipe_file(tmp_path, tiny_qwen2_5_omni)), *overrides]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert (out / "README.md").read_text().startswith("---\nlibrary_name: transformers\n")
    args = ["describe", str(clip_av), "--model", str(out), "--frames", "2", "--max-new-tokens", "2"]
    assert main(args) == 0


def test_push_to_hub_uploads_adapter_processor_and_our_card(
    tiny_qwen2_5_omni, captions, tmp_path, monkeypatch
):
    """trl's push_to_hub / hub_model_id / run_name reach the upload; the Hub itself is the one thing replaced
    (no network here): a HfApi that records what would be uploaded."""
    from fnmatch import fnmatch
    from pathlib import Path

    import transformers.utils.hub as hub
    from huggingface_hub import HfApi, RepoUrl

    class RecordingHub(HfApi):
        def __init__(self):
            super().__init__()
            self.repos, self.uploads = [], []

        def create_repo(self, repo_id, **kwargs):
            self.repos.append((repo_id, kwargs.get("private")))
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(self, *, repo_id, folder_path, ignore_patterns=(), commit_message=None, **kwargs):
            root = Path(folder_path)
            files = {
                p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*")
                if p.is_file()
                and not any(fnmatch(p.relative_to(root).as_posix(), pat) for pat in ignore_patterns)
            }
            self.uploads.append((repo_id, commit_message, files))

    recording = RecordingHub()
    monkeypatch.setattr(hub, "_hf_api", recording)
    out = tmp_path / "run"
    overrides = [f"data.path={captions}", f"output_dir={out}", *FAST, "max_steps=2", "save_steps=1"]
    overrides += [
        "push_to_hub=true",
        "hub_model_id=me/tiny-emotions",
        "hub_strategy=end",
        "run_name=first-try",
    ]
    assert main(["train", "sft", str(_recipe_file(tmp_path, tiny_qwen2_5_omni)), *overrides]) == 0
    assert recording.repos == [("me/tiny-emotions", None)]  # hub_private_repo unset: the Hub default
    ((repo, message, files),) = recording.uploads
    assert repo == "me/tiny-emotions" and message == "affectreason: first-try"
    assert {
        "adapter_model.safetensors",
        "adapter_config.json",
        "processor_config.json",
        "run_manifest.json",
    } <= set(files)
    assert not any(name.startswith("checkpoint-") for name in files)
    assert files["README.md"].decode().startswith("---\nlibrary_name: peft\n")  # our card, not trl's


def test_resume_skips_partial_checkpoints_and_refuses_changed_settings(
    first_run, tiny_qwen2_5_omni, captions, tmp_path, capsys
):
    """A kill during a save leaves checkpoint folders that look like checkpoints; resume skips each with a line."""
    out = tmp_path / "resumed"
    shutil.copytree(first_run / "checkpoint-2", out / "checkpoint-2")
    shutil.copytree(first_run / "checkpoint-4", out / "checkpoint-4")
    optimizer = out / "checkpoint-4" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[: optimizer.stat().st_size // 2])  # truncated
    shutil.copytree(first_run / "checkpoint-4", out / "checkpoint-5")
    (out / "checkpoint-5" / "trainer_state.json").unlink()
    (out / "checkpoint-6").mkdir()  # killed right after mkdir
    args = ["train", "sft", str(_recipe_file(tmp_path, tiny_qwen2_5_omni)), f"data.path={captions}"]
    args += [f"output_dir={out}", *FAST, "save_steps=2", "resume_from_checkpoint=auto"]
    assert main([*args, "max_steps=4"]) == 0
    err = capsys.readouterr().err
    for name in ("checkpoint-6", "checkpoint-5", "checkpoint-4"):
        assert f"skipping partial checkpoint {out / name}" in err, err
    original, resumed = _losses(first_run / "checkpoint-4"), _losses(out / "checkpoint-4")
    for step in (3, 4):
        assert resumed[step] == pytest.approx(original[step], rel=1e-4, abs=1e-4)

    for change, key in (("learning_rate=0.05", "learning_rate"), ("lora.r=8", "r")):
        assert main([*args, "max_steps=6", change]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning: ")]
        assert len(lines) == 1 and lines[0].startswith("error: "), lines  # the partial ones are still there
        assert f"{key}:" in lines[0] and "checkpoint-4" in lines[0], lines
    other = tmp_path / "other.csv"
    other.write_text(captions.read_text().replace("We won!", "We lost."))
    shutil.copy(captions.parent / "a.mp4", tmp_path / "a.mp4")
    shutil.copy(captions.parent / "b.mp4", tmp_path / "b.mp4")
    assert main([*args, "max_steps=6", f"data.path={other}"]) == 2
    assert "data" in capsys.readouterr().err
