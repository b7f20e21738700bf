"""What a training run leaves behind, and how it resumes: adapter, model card, run manifest, checkpoint records.

The output folder loads with `PeftModel.from_pretrained`, `affectreason describe --adapter`, and vLLM's
`--lora-modules`. `README.md` carries Hub-style YAML metadata (base_model, library_name, tags);
`run_manifest.json` records the resolved recipe, library versions, the git commit and the metrics.

Each finished checkpoint save gets `affectreason_checkpoint.json`, written last: the size of every file and the
settings that shaped the run. Resuming skips a `checkpoint-N` whose record is missing or whose files differ
from it (a kill during the save), and refuses to continue a run whose settings changed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from affectreason.backbones.adapters import MANIFEST_NAME
from affectreason.errors import AffectReasonError
from affectreason.rationale import FORMAT_VERSION
from affectreason.train.config import Recipe, recipe_to_dict, recipe_to_yaml, resolved_args

CHECKPOINT_RECORD = "affectreason_checkpoint.json"
# Settings that may change when a run is resumed (leaf names, whatever section holds them): how long to run,
# where and how often to save or log, and how many workers decode.
_RESUMABLE = frozenset(
    {
        "max_steps",
        "num_train_epochs",
        "resume_from_checkpoint",
        "output_dir",
        "save_steps",
        "save_total_limit",
        "logging_steps",
        "logging_first_step",
        "eval_steps",
        "report_to",
        "num_workers",
        "dataloader_num_workers",
        "path",  # the data file may move; its content hash is compared instead
        "eval_path",
        "description",
        "run_name",
        "push_to_hub",
        "hub_model_id",
        "hub_strategy",
        "hub_token",
        "hub_private_repo",
        "hub_revision",
        "logging_dir",
        "per_device_eval_batch_size",
        "eval_max_new_tokens",
        "eval_strategy",
    }
)
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


# ---- checkpoints: a completion record per save, resume that skips partial saves and refuses changed settings ----


def run_settings(recipe: Recipe) -> dict[str, Any]:
    """The recipe flattened to dotted keys plus the data file's hash, without the settings a resume may change."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif prefix.rsplit(".", 1)[-1] not in _RESUMABLE:
            flat[prefix] = value

    walk("", recipe_to_dict(recipe))
    flat["data.sha256"] = file_sha256(recipe.data.path) if recipe.data.path else None
    return flat


def checkpoint_callback(recipe: Recipe) -> Any:
    """A trainer callback that writes each checkpoint's completion record once the save has finished."""
    from transformers import TrainerCallback

    settings = run_settings(recipe)

    class CheckpointRecord(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                write_checkpoint_record(folder, settings)

    return CheckpointRecord()


def write_checkpoint_record(folder: Path, settings: dict[str, Any]) -> None:
    files = {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != CHECKPOINT_RECORD
    }
    record = {"files": files, "settings": settings}
    partial = folder / f".{CHECKPOINT_RECORD}.tmp"
    partial.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    partial.replace(folder / CHECKPOINT_RECORD)  # atomic: a record exists only when it is whole


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None when its save finished and nothing changed since)."""
    record_path = folder / CHECKPOINT_RECORD
    if not (folder / "trainer_state.json").is_file():
        return "no trainer_state.json"
    if not record_path.is_file():
        return f"no {CHECKPOINT_RECORD}: the save did not finish"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return f"unreadable {CHECKPOINT_RECORD}"
    for name, size in record.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} is truncated ({path.stat().st_size} of {size} bytes)"
    return None


def _warn(message: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        print(message, file=sys.stderr)


def resume_checkpoint(recipe: Recipe, warn: Callable[[str], None] = _warn) -> str | None:
    """The checkpoint to resume from (None: start fresh), checked against the recipe.

    `auto` takes the newest complete `checkpoint-N` in `output_dir`, with one warning line per partial one
    skipped; an explicit path must be complete. Either way a run whose settings differ is refused.
    """
    value = recipe.args.resume_from_checkpoint
    if value is None:
        return None
    if value == "auto":
        out = Path(recipe.args.output_dir)
        found = [
            p for p in out.glob("checkpoint-*") if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)
        ]
        chosen = None
        for folder in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
            problem = checkpoint_problem(folder)
            if problem is None:
                chosen = folder
                break
            warn(f"warning: skipping partial checkpoint {folder} ({problem})")
        if chosen is None:
            return None
    else:
        chosen = Path(value)
        if not chosen.is_dir():
            raise AffectReasonError(f"resume_from_checkpoint: {value} is not a checkpoint folder")
        problem = checkpoint_problem(chosen)
        if problem:
            raise AffectReasonError(f"resume_from_checkpoint: {value} is not a checkpoint folder ({problem})")
    record = json.loads((chosen / CHECKPOINT_RECORD).read_text(encoding="utf-8"))
    before, now = record.get("settings", {}), run_settings(recipe)
    changed = [k for k in dict.fromkeys([*before, *now]) if before.get(k) != now.get(k)]
    if changed:
        shown = "; ".join(f"{k}: {_short(before.get(k))} vs {_short(now.get(k))}" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise AffectReasonError(
            f"{chosen} was trained with other settings ({shown}{more}); resume with the same recipe "
            "or start a new output_dir"
        )
    return str(chosen)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
