"""The run manifest: everything needed to reproduce a bench run (model and its fingerprint, prompt, decoding,
selection, package versions, git commit, data file hashes); resume and merge compare it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

from affectreason.bench.adapters import DatasetScan
from affectreason.bench.identity import fingerprint, local_path
from affectreason.bench.options import BenchOptions
from affectreason.bench.suites import Suite
from affectreason.prompts import Prompt, load_prompt

_PACKAGES = ("affectreason", "torch", "transformers", "peft", "trl", "av", "decord", "vllm", "openai")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _git_commit() -> str | None:
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def build_manifest(
    suite: Suite, scans: list[DatasetScan], options: BenchOptions, prompt: Prompt, root: Path
) -> dict[str, Any]:
    """Everything needed to reproduce the run: model, prompt, decoding, selection, versions, data hashes."""
    d = options.describe
    return {
        "suite": suite.name,
        "suite_file": suite.path,
        "datasets": [s.spec.name for s in scans],
        "selected": {
            s.spec.name: len(s.samples[: options.limit] if options.limit else s.samples) for s in scans
        },
        "limit": options.limit,
        "shard": list(options.shard),
        "model": local_path(options.model),
        "adapter": local_path(options.adapter),
        "model_fingerprint": fingerprint(options.model),
        "adapter_fingerprint": fingerprint(options.adapter),
        "engine": options.engine,
        "prompt": prompt.name,
        "prompt_version": prompt.id,
        "decoding": d.decoding(),
        "sampling": {
            "frames": d.frames,
            "fps": d.fps,
            "max_frames": d.max_frames,
            "max_pixels": d.max_pixels,
        },
        "batch_size": d.batch_size,
        "data_files": {str(f.relative_to(root)): _sha256(f) for s in scans for f in s.files},
        "packages": _versions(),
        "git_commit": _git_commit(),
        **({"attribution": True} if options.attribution else {}),
        **({"judge": options.judge.manifest()} if options.judge else {}),
        **({"dataset_prompts": own} if (own := _dataset_prompts(scans)) else {}),
    }


def _dataset_prompts(scans: list[DatasetScan]) -> dict[str, str]:
    """`dataset -> prompt id` for the datasets asked with their own prompt instead of the suite's."""
    return {s.spec.name: load_prompt(s.spec.prompt).id for s in scans if s.spec.prompt}
