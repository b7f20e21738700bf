"""Where the packaged data folders (prompts, recipes, benchmark suites) live, in a checkout or a wheel."""

from __future__ import annotations

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
