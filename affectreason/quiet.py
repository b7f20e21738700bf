"""Silence the one-time library messages that reach users on every run but ask nothing of them.

Each is matched by its exact text, so every other warning still shows: bitsandbytes' notice that an optional
CPU kernel package is absent (it falls back to its own kernels), and the deprecation warning transformers raises
when peft or trl read `is_gradient_checkpointing` (nothing the user can change).
"""

from __future__ import annotations

import logging
import re
import warnings

_LOG_NOISE = {
    "bitsandbytes.backends.cpu.ops": re.compile(
        r"Failed to load CPU gemm_4bit_forward from kernels-community"
    ),
}
_WARNING_NOISE = ((r"`is_gradient_checkpointing` is deprecated", FutureWarning),)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(str(record.msg))


def silence_library_noise() -> None:
    """Install the filters (idempotent); loggers are configured before the libraries are imported."""
    for name, pattern in _LOG_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) for f in logger.filters):
            logger.addFilter(_DropMatching(pattern))
    for message, category in _WARNING_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
