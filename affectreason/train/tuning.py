"""What a run trains: LoRA on the language model (the default), LoRA on the towers as well, or every weight
(`model.finetuning: full`); the towers named in `model.freeze` (ms-swift's `freeze_vit` and friends) stay frozen.

LoRA on a tower is off by default (`freeze: [vision, audio]`); `freeze: []` adapts every linear layer of the
towers too. QLoRA stays LoRA-only (a quantized base cannot be fully fine-tuned): `recipes validate` refuses it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from affectreason.backbones import Backbone
    from affectreason.train.sections import LoraSection, ModelSection


def trainable_towers(backbone: Backbone, freeze: list[str]) -> dict[str, str]:
    """The towers (name -> module path) that train: those of the family not named in `freeze`."""
    return {name: path for name, path in backbone.tower_paths.items() if name not in freeze}


def lora_targets(backbone: Backbone, towers: dict[str, str]) -> list[str]:
    """Exact module names for peft: the language model's default targets plus every linear layer of `towers`."""
    import torch

    default = re.compile(backbone.lora_target_modules)
    prefixes = tuple(f"{path}." for path in towers.values())
    names = []
    for name, module in backbone.model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if default.fullmatch(name) or name.startswith(prefixes):
            names.append(name)
    return names


def full_finetuning(backbone: Backbone, freeze: list[str]) -> Any:
    """Every parameter trains except those of the frozen towers; returns the model."""
    from peft import PeftModel

    model = backbone.model
    if isinstance(model, PeftModel):
        raise AffectReasonError("finetuning: full starts from a model; merge the adapter into it first")
    frozen = tuple(f"{path}." for name, path in backbone.tower_paths.items() if name in freeze)
    for name, param in model.named_parameters():
        param.requires_grad_(not name.startswith(frozen))
    model.train()
    return model


def prepare_for_training(backbone: Backbone, model: ModelSection, lora: LoraSection) -> Any:
    """Make the backbone's model trainable as the recipe says; returns it."""
    from affectreason.train.lora import apply_lora

    if model.finetuning == "full":
        return full_finetuning(backbone, model.freeze)
    towers = trainable_towers(backbone, model.freeze)
    if towers and lora.target_modules is None:
        lora = dataclasses.replace(lora, target_modules=lora_targets(backbone, towers))
    return apply_lora(backbone, lora, frozen=model.freeze)
