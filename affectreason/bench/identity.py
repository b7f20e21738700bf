"""Which model made a run: a cheap content fingerprint of a local checkpoint or adapter folder (config files,
weight file sizes and mtimes, safetensors headers and index), so resume and merge compare models, not paths."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

_CONFIGS = ("config.json", "adapter_config.json", "generation_config.json")
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_INDEXES = (".index.json",)
_MAX_HEADER = 100 * 1024 * 1024


def _safetensors_header(path: Path) -> bytes:
    with path.open("rb") as handle:
        size = handle.read(8)
        if len(size) < 8:
            return b""
        (length,) = struct.unpack("<Q", size)
        return handle.read(min(length, _MAX_HEADER))


def local_path(name: str | None) -> str | None:
    """The absolute path of a local model or adapter (so `./m` and `/abs/m` read the same), else `name`."""
    if not name:
        return name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def fingerprint(name: str | None) -> str | None:
    """`sha256:<hex>` over a local file or folder's identity (the same for `./m` and `/abs/m`), `name:<id>` for
    a hub id or a served model name, None for None. Reads configs and headers only, never whole weight files."""
    if not name:
        return None
    path = Path(name).expanduser()
    if not path.exists():
        return f"name:{name}"
    path = path.resolve()
    files = sorted(p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        relative = file.relative_to(path).as_posix() if path.is_dir() else file.name
        if file.name in _CONFIGS or file.name.endswith(_INDEXES):
            digest.update(f"{relative}\0".encode() + file.read_bytes())
        elif file.name.endswith(_WEIGHTS):
            stat = file.stat()
            digest.update(json.dumps([relative, stat.st_size, stat.st_mtime_ns]).encode())
            if file.name.endswith(".safetensors"):
                digest.update(_safetensors_header(file))
    return f"sha256:{digest.hexdigest()}"
