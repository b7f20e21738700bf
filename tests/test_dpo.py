"""DPO on tiny omni backbones through the CLI: pairs read from a file, media in every pass, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_grpo import write_labels, write_recipe

from affectreason.cli import main
from affectreason.rationale import Rationale, render_canonical


def write_pairs(folder: Path, count: int = 4) -> Path:
    labels = write_labels(folder, count)
    rows = []
    for line in labels.read_text().splitlines()[1:]:
        video, emotion = line.split(",")
        chosen = render_canonical(Rationale(emotions=[emotion], reasoning="tone and colour"))
        rows.append({"video": video, "chosen": chosen, "rejected": "no idea"})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("family_fixture", ["tiny_qwen2_5_omni", "tiny_qwen3_omni"])
def test_dpo_cli(family_fixture, request, tmp_path):
    model = request.getfixturevalue(family_fixture)
    pairs = write_pairs(tmp_path / "data")
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "dpo.yaml", "dpo", model, pairs, out, beta=0.1)
    assert main(["train", "dpo", str(recipe), "per_device_train_batch_size=2"]) == 0
    assert (out / "adapter_config.json").is_file()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert any("rewards/margins" in row for row in state["log_history"])


def test_preference_batch_carries_media_for_chosen_and_rejected(tiny_qwen2_5_omni, tmp_path):
    import torch

    from affectreason.backbones import load_backbone
    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.dpo import PreferenceCollator, read_pairs
    from affectreason.train.sections import DataSection

    rows = read_pairs(write_pairs(tmp_path / "data", count=2))
    backbone = load_backbone(str(tiny_qwen2_5_omni), dtype="float32")
    batch = PreferenceCollator(MultimodalCollator(backbone, DataSection(frames=2), prompt="Describe."))(rows)
    assert batch["input_ids"].shape[0] == 4 and batch["video_grid_thw"].shape[0] == 4
    assert batch["input_features"].shape[0] == 4 and batch["use_audio_in_video"] is True
    # chosen rows first, rejected rows second; the completion mask covers only the responses
    assert batch["completion_mask"][:2].sum() > batch["completion_mask"][2:].sum() > 0
    calls = []
    tower = backbone.tower_modules()["audio"]
    tower.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        backbone.model(**{k: v for k, v in batch.items() if k != "completion_mask"})
    assert calls


def test_pairs_file_errors_are_one_line(tmp_path, capsys):
    from affectreason.errors import AffectReasonError
    from affectreason.train.dpo import read_pairs

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"video": "x.mp4", "chosen": "a"}) + "\n")
    with pytest.raises(AffectReasonError, match="row 1: needs video"):
        read_pairs(bad)
    bad.write_text(json.dumps({"video": "missing.mp4", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(AffectReasonError, match="no media file"):
        read_pairs(bad)
    with pytest.raises(AffectReasonError, match="no pairs file"):
        read_pairs(tmp_path / "none.jsonl")


@pytest.mark.parametrize("family_fixture", ["tiny_qwen2_5_omni", "tiny_llava"])
def test_dpo_batch_labels_one_end_of_turn(family_fixture, request, tmp_path):
    """trl's dataset preparation must not add a second end-of-turn to what the collator labels."""
    from affectreason.train.config import load_recipe
    from affectreason.train.dpo import build_dpo_trainer

    model = request.getfixturevalue(family_fixture)
    pairs = write_pairs(tmp_path / "data", count=2)
    recipe = load_recipe(str(write_recipe(tmp_path / "dpo.yaml", "dpo", model, pairs, tmp_path / "o")), [])
    trainer, backbone, _ = build_dpo_trainer(recipe)
    batch = next(iter(trainer.get_train_dataloader()))
    eos = backbone.tokenizer.eos_token_id
    responses = [json.loads(line) for line in pairs.read_text().splitlines()]
    texts = [r["chosen"] for r in responses] + [r["rejected"] for r in responses]
    for ids, mask, text in zip(batch["input_ids"], batch["completion_mask"], texts, strict=True):
        completion = ids[mask.bool()].tolist()
        assert completion.count(eos) == 1 and completion[-1] == eos
        assert backbone.tokenizer.decode(completion[:-1]).strip() == text.strip()
