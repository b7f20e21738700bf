"""Evidence: what can be measured in a clip without a model (voice descriptors, face/smile/eyes, motion, light).

Each measurement carries its value and the reference range that makes it "low" (below `low`), "high" (above
`high`) or "medium" (in between); presence measurements are fractions of frames, so "high" reads "present" and
"low" reads "absent". Visual measurements use the Haar cascades bundled in `opencv-python-headless` (< 5; OpenCV 5
dropped them from the wheel): frontal face, profile face, eyes, smile. Light layer: no torch import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from affectreason.acoustics import acoustic_descriptors
from affectreason.media import Clip

DETECT_WIDTH = 320  # frames are downscaled to this width before detection (speed; faces stay > 30 px)
MAX_EVIDENCE_FRAMES = 8
MIN_SPEECH_VOICED = 0.02  # the same "no audible speech" rule as `describe_acoustics`
# Below these, the eye and smile cascades miss what is there (dark H.264 loses the mouth's edges), so a
# missing smile would be taken for an absent one: face details are then reported as not measurable.
MIN_DETAIL_BRIGHTNESS = 0.15
MIN_DETAIL_FACE_PX = 48

# name: (unit, low, high, presence). Ranges are for adult conversational speech recorded at a normal level and
# for a frontal talking-head clip; see README "Cue verification" for how they were checked.
REFERENCE: dict[str, tuple[str, float, float, bool]] = {
    "speech": ("fraction of voiced frames", 0.02, 0.05, True),
    "loudness": ("dBFS", -35.0, -20.0, False),
    "loudness_variation": ("dB std", 4.0, 9.0, False),
    "pitch": ("Hz", 120.0, 200.0, False),
    "pitch_spread": ("semitones std", 1.0, 3.0, False),
    "pitch_jitter": ("semitones per 20 ms", 0.25, 0.6, False),
    "pace": ("syllables/s", 4.0, 6.5, False),
    "pauses": ("fraction of time in pauses", 0.05, 0.2, False),
    "face": ("fraction of frames", 0.2, 0.5, True),
    "face_size": ("face width / frame width", 0.12, 0.35, False),
    "smile": ("fraction of face frames", 0.2, 0.5, True),
    "eyes_open": ("fraction of face frames", 0.2, 0.5, True),
    "looking_away": ("fraction of face frames in profile", 0.2, 0.5, True),
    "motion": ("mean |frame difference| / 255", 0.01, 0.04, False),
    "brightness": ("mean grey level / 255", 0.25, 0.75, False),
}


@dataclass(frozen=True)
class Measurement:
    """One measured signal: value, unit, reference range and the level it falls in."""

    name: str
    value: float | None
    unit: str
    low: float
    high: float
    presence: bool

    @property
    def level(self) -> str | None:
        """ "low", "medium" or "high" (None when not measurable, e.g. smile without a face)."""
        if self.value is None:
            return None
        return "low" if self.value < self.low else "high" if self.value > self.high else "medium"

    def describe(self) -> str:
        """e.g. "loudness -42.1 dBFS (low; range -35..-20)" or "smile 0.00 (absent; range 0.2..0.5)"."""
        if self.value is None:
            return f"{self.name} not measurable"
        words = {"low": "absent", "high": "present", "medium": "unclear"} if self.presence else {}
        level = words.get(self.level, self.level)
        return f"{self.name} {self.value:g} {self.unit} ({level}; range {self.low:g}..{self.high:g})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "level": self.level}


def _measure(name: str, value: float | None) -> Measurement:
    unit, low, high, presence = REFERENCE[name]
    return Measurement(name, None if value is None else round(float(value), 4), unit, low, high, presence)


def acoustic_evidence(audio: np.ndarray | None, sample_rate: int = 16_000) -> dict[str, Measurement]:
    """Voice measurements; everything but `speech` is unmeasurable when the clip has no audible speech."""
    d = acoustic_descriptors(audio, sample_rate) if audio is not None and len(audio) else None
    speaking = d is not None and d["loudness_dbfs"] is not None and d["voiced_fraction"] >= MIN_SPEECH_VOICED
    values: dict[str, float | None] = {"speech": d["voiced_fraction"] if d else 0.0}
    if speaking:
        values.update(
            loudness=d["loudness_dbfs"],
            loudness_variation=d["loudness_std_db"],
            pitch=d["pitch_hz"],
            pitch_spread=d["pitch_std_semitones"],
            pitch_jitter=d["pitch_jitter_semitones"],
            pace=d["syllables_per_s"],
            pauses=d["pause_total_s"] / d["duration_s"] if d["duration_s"] else None,
        )
    names = ("loudness", "loudness_variation", "pitch", "pitch_spread", "pitch_jitter", "pace", "pauses")
    return {name: _measure(name, values.get(name)) for name in ("speech", *names)}


@lru_cache(maxsize=1)
def _cascades() -> dict[str, Any]:
    import cv2

    folder = cv2.data.haarcascades
    files = {
        "face": "haarcascade_frontalface_default.xml",
        "profile": "haarcascade_profileface.xml",
        "eye": "haarcascade_eye.xml",
        "smile": "haarcascade_smile.xml",
    }
    return {key: cv2.CascadeClassifier(folder + name) for key, name in files.items()}


def _largest(boxes: Any) -> tuple[int, int, int, int] | None:
    return max((tuple(int(v) for v in b) for b in boxes), key=lambda b: b[2] * b[3], default=None)


def _frame_faces(grey: np.ndarray) -> dict[str, Any]:
    """Frontal face (largest), profile face (either side), eyes and smile inside the frontal face."""
    c = _cascades()
    min_face = max(24, grey.shape[1] // 12)
    face = _largest(c["face"].detectMultiScale(grey, 1.1, 5, minSize=(min_face, min_face)))
    found: dict[str, Any] = {"face": face, "profile": False, "eyes": False, "smile": False}
    if face is None:
        mirrored = np.ascontiguousarray(grey[:, ::-1])
        found["profile"] = any(
            len(c["profile"].detectMultiScale(g, 1.1, 5, minSize=(min_face, min_face)))
            for g in (grey, mirrored)
        )
        return found
    x, y, w, h = face
    upper = grey[y : y + h * 5 // 8, x : x + w]
    lower = grey[y + h // 2 : y + h, x : x + w]
    found["eyes"] = len(c["eye"].detectMultiScale(upper, 1.1, 5, minSize=(w // 10, w // 10))) > 0
    # Many neighbours: the smile cascade fires on any dark horizontal edge at low settings.
    found["smile"] = len(c["smile"].detectMultiScale(lower, 1.1, 20, minSize=(w // 4, h // 10))) > 0
    return found


def visual_evidence(frames: np.ndarray | None, limit: int = MAX_EVIDENCE_FRAMES) -> dict[str, Measurement]:
    """Face presence and size, smile, eyes open, looking away, motion and brightness from `(T,H,W,3)` frames
    (at most `limit` of them, evenly spread)."""
    import cv2

    names = ("face", "face_size", "smile", "eyes_open", "looking_away", "motion", "brightness")
    if frames is None or len(frames) == 0:
        return {name: _measure(name, None) for name in names}
    pick = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max(limit, 1))).round().astype(int))
    greys = []
    for frame in frames[pick]:
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if grey.shape[1] > DETECT_WIDTH:
            scale = DETECT_WIDTH / grey.shape[1]
            grey = cv2.resize(grey, (DETECT_WIDTH, max(1, round(grey.shape[0] * scale))), cv2.INTER_AREA)
        greys.append(grey)
    brightness = float(np.mean([g.mean() for g in greys]) / 255)
    motion = float(np.mean([np.abs(a.astype(np.int16) - b).mean() for a, b in zip(greys, greys[1:])]) / 255)
    found = [_frame_faces(cv2.equalizeHist(g)) for g in greys]
    frontal = [f for f in found if f["face"] is not None]
    detailed = [f for f in frontal if f["face"][2] >= MIN_DETAIL_FACE_PX]
    if brightness < MIN_DETAIL_BRIGHTNESS:
        detailed = []
    any_face = len(frontal) + sum(f["profile"] for f in found)
    values: dict[str, float | None] = {
        "face": len(frontal) / len(found),
        "face_size": float(np.median([f["face"][2] / g.shape[1] for f, g in zip(found, greys) if f["face"]]))
        if frontal
        else None,
        "smile": sum(f["smile"] for f in detailed) / len(detailed) if detailed else None,
        "eyes_open": sum(f["eyes"] for f in detailed) / len(detailed) if detailed else None,
        "looking_away": 1 - len(frontal) / any_face if any_face else None,
        "motion": motion if len(greys) > 1 else None,
        "brightness": brightness,
    }
    return {name: _measure(name, values[name]) for name in names}


def clip_evidence(clip: Clip, limit: int = MAX_EVIDENCE_FRAMES) -> dict[str, Measurement]:
    """Every measurement of a decoded clip (acoustic from its audio, visual from up to `limit` frames)."""
    return {**acoustic_evidence(clip.audio, clip.sample_rate), **visual_evidence(clip.frames, limit)}


def evidence_for_path(
    path: str, frames: int = MAX_EVIDENCE_FRAMES, start: float | None = None, end: float | None = None
) -> dict[str, Measurement]:
    """Load a media file (or a window of it) with the one clip loader and measure it."""
    from affectreason.media import load_clip

    return clip_evidence(load_clip(path, frames=frames, start=start, end=end), limit=frames)
