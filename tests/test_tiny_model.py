"""`affectreason tiny-model` and `build_tiny_checkpoint`: real config classes, shrunk, loadable by path."""

from __future__ import annotations

import json

import pytest

from affectreason.backbones.tiny import build_tiny_checkpoint, tiny_families
from affectreason.cli import main
from affectreason.errors import AffectReasonError


def test_list_names_every_family(capsys):
    assert main(["tiny-model", "--list"]) == 0
    assert capsys.readouterr().out.split() == tiny_families()
    assert {"qwen2_5_omni", "qwen3_omni", "qwen2_5_vl", "llava_next_video"} == set(tiny_families())


def test_cli_builds_a_loadable_checkpoint(tmp_path, capsys):
    from affectreason.backbones import load_backbone

    assert main(["tiny-model", "qwen2_5_vl", str(tmp_path / "vl"), "--seed", "3"]) == 0
    assert "wrote a tiny qwen2_5_vl checkpoint" in capsys.readouterr().out
    assert json.loads((tmp_path / "vl" / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    assert load_backbone(str(tmp_path / "vl"), device="cpu").family == "qwen2_5_vl"


def test_unknown_family_is_a_one_line_cli_error(tmp_path, capsys):
    assert main(["tiny-model", "gpt5", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown tiny family 'gpt5'") and err.count("\n") == 1
    with pytest.raises(AffectReasonError):
        build_tiny_checkpoint("gpt5", tmp_path)


def test_the_same_seed_gives_the_same_weights(tmp_path):
    a = build_tiny_checkpoint("qwen2_5_omni", tmp_path / "a", seed=1)
    b = build_tiny_checkpoint("qwen2_5_omni", tmp_path / "b", seed=1)
    c = build_tiny_checkpoint("qwen2_5_omni", tmp_path / "c", seed=2)
    weights = [(p / "model.safetensors").read_bytes() for p in (a, b, c)]
    assert weights[0] == weights[1] != weights[2]
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_tokenizer_covers_the_canonical_format_words(tiny_checkpoints):
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(tiny_checkpoints["qwen2_5_omni"]).tokenizer
    text = "<think>\nVisual: frown\nReasoning: the speaker is angry\n</think>\n<answer>\nEmotions: angry, happy\n"
    assert len(tokenizer(text)["input_ids"]) < len(text) / 2
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
