"""Where things live on disk: the packaged data folders (prompts, recipes, suites, wheel files) and the cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    """A top-level data folder: the checkout's own in an editable install, the copy a wheel installs under `<prefix>/share/affectreason` otherwise."""
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "affectreason" / name


def prompts_dir() -> Path:
    return _data_dir("prompts")


def recipes_dir() -> Path:
    return _data_dir("recipes")


def suites_dir() -> Path:
    """Benchmark suite manifests (`eval/*.yaml`)."""
    return _data_dir("eval")


def package_data_dir() -> Path:
    """Data shipped inside the package (`affectreason/data`: the default wheel and its exemplar vectors)."""
    return _PACKAGE / "data"


def cache_dir() -> Path:
    """Where parsed tables and embeddings are cached: `$AFFECTREASON_CACHE`, else `~/.cache/affectreason`."""
    root = os.environ.get("AFFECTREASON_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "affectreason"
    )
    return Path(root)
