"""What a training run leaves behind: the peft adapter with the processor, a model card, and a run manifest.

The output folder loads with `PeftModel.from_pretrained`, `affectreason describe --adapter`, and vLLM's
`--lora-modules`. `README.md` carries Hub-style YAML metadata (base_model, library_name, tags);
`run_manifest.json` records the resolved recipe, library versions, the git commit and the metrics.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from affectreason.rationale import FORMAT_VERSION
from affectreason.train.config import Recipe, recipe_to_dict, recipe_to_yaml, resolved_args

MANIFEST_NAME = "run_manifest.json"
_PACKAGES = ("affectreason", "torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes", "datasets")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> dict[str, Any] | None:
    """The affectreason source checkout's commit and whether it had local changes (None outside a checkout)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def file_sha256(path: str | Path) -> str | None:
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_hub_id(name: str) -> bool:
    return (
        not Path(name).expanduser().exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))
    )


def model_card(recipe: Recipe, family: str, data: dict[str, Any], metrics: dict[str, Any]) -> str:
    """README.md text: Hub YAML metadata, usage, data summary, recipe and training metrics."""
    from huggingface_hub import ModelCardData

    base = recipe.model.name_or_path
    full = recipe.model.finetuning == "full"
    card = ModelCardData(
        base_model=base if _is_hub_id(base) else None,
        library_name="transformers" if full else "peft",
        tags=[
            "affectreason",
            "emotion-recognition",
            "multimodal",
            recipe.model.finetuning,
            recipe.method,
            family,
        ],
    )
    what = f"`{base}` ({family}) fine-tuned in full" if full else f"A LoRA adapter for `{base}` ({family})"
    out = recipe.args.output_dir
    usage = f"--model {out}" if full else f"--model {base} --adapter {out}"
    lines = [
        "---",
        card.to_yaml(),
        "---",
        "",
        f"# {Path(out).name}",
        "",
        f"{what}, trained with affectreason `train {recipe.method}` to describe the "
        f"emotions in a clip with visual, acoustic and lexical cues (response format {FORMAT_VERSION}).",
        "",
        "## Usage",
        "",
        "```",
        f"affectreason describe clip.mp4 {usage}",
        *([] if full else [f"affectreason merge {out} --out {out}-merged"]),
        "```",
        "",
        "## Data",
        "",
        "| field | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in data.items()),
        "",
        "## Training metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()),
        "",
        "## Recipe",
        "",
        "```yaml",
        recipe_to_yaml(recipe, full=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def run_manifest(
    recipe: Recipe, family: str, data: dict[str, Any], metrics: dict[str, Any], args: Any
) -> dict[str, Any]:
    """The run's record; `args` is the trl config the trainer ran with."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "method": recipe.method,
        "base_model": recipe.model.name_or_path,
        "family": family,
        "format_version": FORMAT_VERSION,
        "recipe": recipe_to_dict(recipe),
        "trainer_args": resolved_args(args),
        "data": {
            **data,
            "path": str(Path(recipe.data.path).resolve()),
            "sha256": file_sha256(recipe.data.path),
        },
        "metrics": metrics,
        "versions": library_versions(),
        "git": git_commit(),
    }


def save_artifacts(
    trainer: Any, backbone: Any, recipe: Recipe, data: dict[str, Any], metrics: dict[str, Any]
) -> Path:
    """Save the adapter (all ranks take part, so sharded weights are gathered) and, on the main process,
    the processor, model card and run manifest into `output_dir`."""
    out = Path(recipe.args.output_dir)
    trainer.save_model(str(out), _internal_call=True)  # pushed below, once our card is written
    if trainer.is_world_process_zero():
        backbone.processor.save_pretrained(str(out))
        (out / "README.md").write_text(model_card(recipe, backbone.family, data, metrics), encoding="utf-8")
        manifest = run_manifest(recipe, backbone.family, data, metrics, trainer.args)
        (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        push_artifacts(trainer, out)
    return out


def push_artifacts(trainer: Any, out: Path) -> None:
    """With trl's `push_to_hub`: upload the adapter (or model), processor, our model card and the manifest to
    `hub_model_id` (trainer.push_to_hub would replace the card with trl's own)."""
    args = trainer.args
    if not args.push_to_hub:
        return
    from transformers.utils.hub import hf_api

    trainer._finish_current_push()  # a checkpoint upload still running
    hf_api().upload_folder(
        repo_id=trainer.hub_model_id,
        folder_path=str(out),
        commit_message=f"affectreason: {args.run_name or out.name}",
        token=args.hub_token,
        revision=args.hub_revision,
        ignore_patterns=["_*", "checkpoint-*", "runs/*"],
    )
