"""Model-free acoustic descriptors (loudness, pitch, pace, pauses) that textualise audio for video-only models."""

from __future__ import annotations

import numpy as np

HOP_S = 0.010  # loudness frame and hop
PITCH_HOP = 2  # pitch every 2 hops (20 ms): plenty for pitch statistics, half the cost
WINDOW_S = 0.040  # pitch window: two periods of the lowest pitch searched
F0_MIN, F0_MAX = 75.0, 500.0
YIN_THRESHOLD = 0.2
SILENCE_FLOOR_DB = -55.0  # frames quieter than this are never speech
DYNAMIC_RANGE_DB = 30.0  # ... nor frames this far below the loud end of the clip
MIN_PAUSE_S = 0.2
MIN_SYLLABLE_GAP_S = 0.1
_EPS = 1e-10


def _frames(audio: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Overlapping frames `(n, size)`, zero-padded at the end; a view, no copy."""
    n = max(1 + (len(audio) - 1) // hop, 1)
    padded = np.zeros((n - 1) * hop + size, np.float32)
    padded[: len(audio)] = audio
    return np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]


def _yin_f0(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame F0 in Hz (NaN when unvoiced) with YIN's cumulative-mean-normalised difference."""
    size = frames.shape[1]
    tau_min, tau_max = int(sample_rate / F0_MAX), int(sample_rate / F0_MIN)
    x = frames.astype(np.float32)
    n_fft = 1 << int(np.ceil(np.log2(size + tau_max + 2)))  # long enough that the lags do not wrap
    spec = np.fft.rfft(x, n=n_fft)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2, n=n_fft)[:, : tau_max + 2]
    energy = np.concatenate([np.zeros((len(x), 1), np.float32), np.cumsum(x**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 2)
    # d(tau) = sum_{j<W-tau} (x_j - x_{j+tau})^2 = E[0:W-tau] + E[tau:W] - 2 r(tau)
    diff = energy[:, size - taus] + (energy[:, [size]] - energy[:, taus]) - 2 * acf
    diff[:, 0] = 0.0
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), _EPS)
    d = cmnd[:, tau_min - 1 : tau_max + 2]
    local_min = (d[:, 1:-1] <= d[:, :-2]) & (d[:, 1:-1] <= d[:, 2:])
    candidate = local_min & (d[:, 1:-1] < YIN_THRESHOLD)
    voiced = candidate.any(axis=1)
    first = candidate.argmax(axis=1)
    rows = np.arange(len(d))
    # Parabolic interpolation around the chosen minimum for sub-sample lag precision.
    a, b, c = d[rows, first], d[rows, first + 1], d[rows, first + 2]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > _EPS, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    lag = tau_min + first + np.clip(shift, -1, 1)
    return np.where(voiced, sample_rate / lag, np.nan)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs of the True runs in a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _syllable_peaks(rms: np.ndarray, active: np.ndarray, hop_s: float) -> int:
    """Energy-envelope peaks inside speech, at least MIN_SYLLABLE_GAP_S apart and 3 dB above their valleys."""
    kernel = np.hanning(7)
    env = np.convolve(rms, kernel / kernel.sum(), mode="same")
    env_db = 20 * np.log10(env + _EPS)
    is_peak = (env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & active[1:-1]
    gap = int(round(MIN_SYLLABLE_GAP_S / hop_s))
    count, last = 0, None
    for p in np.flatnonzero(is_peak) + 1:
        valley = env_db[(last or 0) : p + 1].min()
        if (last is None or p - last >= gap) and env_db[p] - valley >= 3.0:
            count, last = count + 1, p
    return count


def acoustic_descriptors(audio: np.ndarray, sample_rate: int = 16_000) -> dict:
    """Loudness, pitch level and spread, voiced fraction, pace and pauses of a mono float signal in [-1, 1]."""
    audio = np.asarray(audio, dtype=np.float32).ravel()
    hop = int(round(HOP_S * sample_rate))
    duration = len(audio) / sample_rate
    rms = np.sqrt(np.mean(_frames(audio, hop, hop).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(rms + _EPS)
    loud_end = np.percentile(db, 95) if len(db) else SILENCE_FLOOR_DB
    active = db > max(SILENCE_FLOOR_DB, loud_end - DYNAMIC_RANGE_DB)
    pitch_frames = _frames(audio, int(round(WINDOW_S * sample_rate)), hop * PITCH_HOP)
    pitch_active = active[::PITCH_HOP][: len(pitch_frames)]
    f0 = _yin_f0(pitch_frames[pitch_active], sample_rate) if pitch_active.any() else np.zeros(0)
    voiced_f0 = f0[np.isfinite(f0)]
    track = np.full(len(pitch_frames), np.nan)
    track[np.flatnonzero(pitch_active)] = f0
    # Pitch perturbation: semitone steps between adjacent voiced 20 ms frames (a tremor shows as large steps).
    steps = np.abs(np.diff(12 * np.log2(track)))
    steps = steps[np.isfinite(steps)]
    median_f0 = float(np.median(voiced_f0)) if voiced_f0.size else 0.0
    spread = float(np.std(12 * np.log2(voiced_f0 / median_f0))) if voiced_f0.size > 1 else 0.0
    speech_s = float(active.sum() * HOP_S)
    runs = _runs(active)
    pauses = [(b - a) * HOP_S for (_, a), (b, _) in zip(runs[:-1], runs[1:], strict=True)]
    pauses = [float(p) for p in pauses if p >= MIN_PAUSE_S]
    return {
        "duration_s": round(duration, 3),
        "loudness_dbfs": round(float(db[active].mean()), 1) if active.any() else None,
        "loudness_std_db": round(float(db[active].std()), 1) if active.any() else None,
        "pitch_hz": round(median_f0, 1) if voiced_f0.size else None,
        "pitch_std_semitones": round(spread, 2) if voiced_f0.size else None,
        "pitch_jitter_semitones": round(float(np.median(steps)), 3) if steps.size else None,
        "voiced_fraction": round(voiced_f0.size / max(len(pitch_frames), 1), 3),
        "speech_s": round(speech_s, 2),
        "syllables_per_s": round(_syllable_peaks(rms, active, HOP_S) / speech_s, 2) if speech_s else 0.0,
        "pause_count": len(pauses),
        "pause_total_s": round(sum(pauses, 0.0), 2),
        "pause_mean_s": round(sum(pauses) / len(pauses), 2) if pauses else 0.0,
        "pause_longest_s": round(max(pauses, default=0.0), 2),
    }


def _level(value: float, low: float, high: float, words: tuple[str, str, str]) -> str:
    return words[0] if value < low else words[2] if value > high else words[1]


def describe_acoustics(audio: np.ndarray | None, sample_rate: int = 16_000) -> str:
    """One or two plain sentences about the voice, e.g. "Loud voice (-14 dBFS), high pitch (230 Hz) ..."."""
    if audio is None or len(audio) == 0:
        return "No audible speech."
    d = acoustic_descriptors(audio, sample_rate)
    if d["loudness_dbfs"] is None or d["voiced_fraction"] < 0.02:
        return "No audible speech."
    loud = _level(d["loudness_dbfs"], -35, -20, ("Quiet", "Moderate", "Loud"))
    parts = [f"{loud} voice ({d['loudness_dbfs']:.0f} dBFS)"]
    pitch = _level(d["pitch_hz"], 120, 200, ("low", "medium", "high"))
    tone = _level(d["pitch_std_semitones"], 1.5, 3.0, ("flat", "moderate", "lively"))
    parts.append(
        f"{pitch} pitch ({d['pitch_hz']:.0f} Hz) with {tone} intonation "
        f"({d['pitch_std_semitones']:.1f} semitones spread)"
    )
    pace = _level(d["syllables_per_s"], 3.0, 5.0, ("slow", "moderate", "fast"))
    parts.append(f"{pace} pace ({d['syllables_per_s']:.1f} syllables/s)")
    n = d["pause_count"]
    pauses = f"{n} pause{'s' if n != 1 else ''} ({d['pause_total_s']:.1f} s in all)" if n else "no pauses"
    sentence = ", ".join(parts) + f", {pauses}."
    if d["loudness_std_db"] > 8:
        sentence += " Loudness varies a lot."
    return sentence
