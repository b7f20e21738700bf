"""LoRA adapters outside training: `--adapter NAME=PATH` specs, the base an adapter was trained on, and folding
an adapter into its full-precision base as a standalone checkpoint (`affectreason merge`, vLLM families
without LoRA support)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from affectreason.errors import AffectReasonError, ModelLoadError

# The run manifest a training run writes beside its adapter (`train.artifacts`); a merge carries it along.
MANIFEST_NAME = "run_manifest.json"
MERGE_STEPS = ("loading base and adapter", "merging", "saving")


def parse_adapters(specs: list[str]) -> dict[str, str]:
    """`name=path` (or a bare path, named after its folder) for each `--adapter`."""
    adapters: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).name, spec
        if not name or not path:
            raise AffectReasonError(f"--adapter '{spec}' must be NAME=PATH or PATH")
        if name in adapters:
            raise AffectReasonError(f"--adapter name '{name}' is given twice")
        adapters[name] = path
    return adapters


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
    from affectreason.backbones import load_backbone

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
