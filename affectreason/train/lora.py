"""LoRA / QLoRA on a Backbone: adapters on the language model only, everything else frozen.

QLoRA is the same call on a backbone loaded with `quantization="4bit"` (NF4 through bitsandbytes). Unlike
peft's `prepare_model_for_kbit_training`, nothing is up-cast to fp32: the towers and embeddings stay in the
load dtype, so a 4-bit 7B model keeps its small footprint.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from affectreason.backbones import Backbone
    from affectreason.train.sections import LoraSection


def lora_config(backbone: Backbone, lora: LoraSection, frozen: Collection[str] | None = None) -> Any:
    """The peft `LoraConfig`: the recipe's rank/alpha/dropout, targets defaulting to the backbone's regex.

    The frozen towers (all by default; `model.freeze` names them) are always excluded: peft turns a regex into bare leaf names for models with a weight conversion
    mapping (Qwen3-Omni), which would otherwise reach the audio tower's `q_proj`/`k_proj`/`v_proj`.
    """
    from peft import LoraConfig

    targets = lora.target_modules or backbone.lora_target_modules
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        exclude_modules=backbone.lora_exclude_modules(frozen),
        bias="none",
        task_type="CAUSAL_LM",
    )


def apply_lora(backbone: Backbone, lora: LoraSection, frozen: Collection[str] | None = None) -> Any:
    """Wrap `backbone.model` with trainable LoRA adapters (or reopen its loaded adapter for training).

    Sets `backbone.model` to the peft model and returns it; only `lora_` parameters require grad.
    """
    from peft import PeftModel, get_peft_model

    model = backbone.model
    for param in model.parameters():
        param.requires_grad_(False)
    if isinstance(model, PeftModel):  # continue training the adapter given in `model.adapter`
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.requires_grad_(True)
    else:
        try:
            model = get_peft_model(model, lora_config(backbone, lora, frozen))
        except ValueError as exc:
            raise AffectReasonError(f"LoRA target modules match nothing in this model: {exc}") from None
    model.train()
    backbone.model = model
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise AffectReasonError("LoRA left no trainable parameters; check lora.target_modules")
    return model
