"""Calibration of stated confidences against hit/miss: expected calibration error and Brier score."""

from __future__ import annotations

import numpy as np


def calibration(confidences: list[float], hits: list[float], bins: int = 10) -> dict:
    """ECE over `bins` equal-width confidence bins (weighted by bin size) and the Brier score; zeros when empty.
    Samples whose confidence is None are skipped."""
    pairs = [(float(c), float(h)) for c, h in zip(confidences, hits, strict=False) if c is not None]
    if not pairs:
        return {"ece": 0.0, "brier": 0.0, "n": 0}
    conf = np.clip(np.array([p[0] for p in pairs]), 0.0, 1.0)
    outcome = np.array([p[1] for p in pairs])
    index = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(conf[mask].mean() - outcome[mask].mean())
    return {"ece": float(ece), "brier": float(np.mean((conf - outcome) ** 2)), "n": len(pairs)}
