"""Any trl SFT / GRPO / DPO field set in a recipe or an override reaches the trainer (`train ...` through the CLI)."""

from __future__ import annotations

import pytest
import torch
from test_dpo import write_pairs
from test_grpo import GRPO_FIELDS, write_labels, write_recipe

from affectreason.cli import main

CASES = {
    "sft": (
        {"adam_beta2": 0.95, "max_grad_norm": 0.5, "weight_decay": 0.01},
        ["seed=7", "run_name=tiny-sft", "max_length=4096", "logging_first_step=false"],
        {"seed": 7, "run_name": "tiny-sft", "max_length": 4096, "logging_first_step": False},
    ),
    "grpo": (
        {**GRPO_FIELDS, "mask_truncated_completions": True, "epsilon_high": 0.28, "top_k": 5},
        ["repetition_penalty=1.1", "vllm_tensor_parallel_size=2", "num_generations=2", "temperature=0.7"],
        {"repetition_penalty": 1.1, "vllm_tensor_parallel_size": 2, "num_generations": 2, "temperature": 0.7},
    ),
    "dpo": (
        {"beta": 0.25, "loss_type": ["ipo"], "label_smoothing": 0.0},
        ["use_weighting=true", "max_grad_norm=0.3", "per_device_train_batch_size=2", "disable_dropout=false"],
        {"use_weighting": True, "max_grad_norm": 0.3, "disable_dropout": False},
    ),
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_trl_fields_reach_the_trainer(method, tiny_qwen2_5_omni, tmp_path):
    in_file, overrides, expected = CASES[method]
    data = write_pairs(tmp_path / "data", 2) if method == "dpo" else write_labels(tmp_path / "data", 2)
    out = tmp_path / "run"
    fields = {**in_file, "max_steps": 1, "save_steps": 10}
    if method == "grpo":
        fields["per_device_train_batch_size"] = 2
    recipe = write_recipe(tmp_path / "r.yaml", method, tiny_qwen2_5_omni, data, out, **fields)
    assert main(["train", method, str(recipe), *overrides]) == 0
    args = torch.load(out / "training_args.bin", weights_only=False)  # what the trainer ran with
    assert type(args).__name__ == {"sft": "SFTConfig", "grpo": "GRPOConfig", "dpo": "DPOConfig"}[method]
    for key, value in {**{k: v for k, v in in_file.items() if k != "rewards"}, **expected}.items():
        assert getattr(args, key) == value, key
    assert args.max_steps == 1 and args.remove_unused_columns is False
