"""`affectreason merge`: fold a LoRA adapter into its full-precision base and save a standalone checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from affectreason.errors import AffectReasonError, ModelLoadError
from affectreason.train.artifacts import MANIFEST_NAME

MERGE_STEPS = ("loading base and adapter", "merging", "saving")


def adapter_base(adapter: str | Path) -> str:
    """The base model an adapter folder names in its `adapter_config.json`."""
    config = Path(adapter) / "adapter_config.json"
    if not config.is_file():
        raise ModelLoadError(f"'{adapter}' is not a peft adapter: no adapter_config.json in it")
    try:
        base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"'{adapter}' has an unreadable adapter_config.json: {exc}") from None
    if not base:
        raise ModelLoadError(f"'{adapter}' does not name its base model: pass --model")
    return str(base)


def merge_adapter(
    adapter: str | Path,
    out: str | Path,
    *,
    model: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
    trust_remote_code: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Path:
    """Load base + adapter (never quantized, so QLoRA adapters merge into full weights), merge, and save
    the merged model with its processor; the run manifest travels along with a note of the merge.
    `on_step(name)` is called as each of `MERGE_STEPS` starts."""
    from affectreason.backbones.base import load_backbone

    adapter, out = Path(adapter), Path(out)
    if out.resolve() == adapter.resolve():
        raise AffectReasonError("--out must differ from the adapter folder")
    if out.exists() and any(out.iterdir()):
        raise AffectReasonError(f"{out} exists and is not empty")
    base = model or adapter_base(adapter)
    step = on_step or (lambda name: None)
    step(MERGE_STEPS[0])
    backbone = load_backbone(
        base, adapter=str(adapter), dtype=dtype, device=device, trust_remote_code=trust_remote_code
    )
    step(MERGE_STEPS[1])
    merged = backbone.model.merge_and_unload()
    step(MERGE_STEPS[2])
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    backbone.processor.save_pretrained(str(out))
    manifest = adapter / MANIFEST_NAME
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data["merged"] = {"adapter": str(adapter.resolve()), "base_model": base}
        (out / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out
