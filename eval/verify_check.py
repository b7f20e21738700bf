"""Validation of cue verification on synthesised signals with known ground truth.

Speech comes from espeak-ng at controlled amplitude (-a), pitch (-p) and rate (-s), with SSML breaks for pauses
and a 6 Hz pitch tremor imposed by time-warping; pictures come from scikit-image's `data.astronaut()` (a smiling
face) made into clips: as it is, mirrored, panned, darkened, brightened, cropped to a close-up, shrunk into a wide
shot, upside down and blank (no face). Each clip is paired with cue phrases that agree with how it was made
(expected "supported") or claim the opposite (expected "contradicted"); the records go through
`affectreason.verify.verify_file`, the function behind `affectreason verify`, and the script prints per-claim
accuracy as a Markdown table.

    PYTHONPATH=. python eval/verify_check.py --out /tmp/verify-check     # needs espeak-ng and scikit-image
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from affectreason import synth
from affectreason.verify import verify_file

SENTENCES = (
    "Well, I really did not expect to see you here today.",
    "I told you already, this is not what we agreed on, and I am tired of waiting.",
    "The train leaves at seven, so we should pack our bags tonight.",
)
S, C = "supported", "contradicted"
# condition: (espeak-ng settings, [(acoustic cue, expected verdict)])
VOICES = {
    "quiet (-a 15)": ({"amplitude": 15}, [("quiet voice", S), ("loud shouting", C)]),
    "loud (-a 190)": ({"amplitude": 190}, [("loud voice", S), ("whispering", C)]),
    "low pitch (-p 0)": ({"pitch": 0}, [("deep, low-pitched voice", S), ("high-pitched voice", C)]),
    "high pitch (en+f3 -p 99)": (
        {"voice": "en+f3", "pitch": 99},
        [("high-pitched voice", S), ("deep voice", C)],
    ),
    "slow (-s 80)": ({"rate": 80}, [("speaks slowly", S), ("rapid speech", C)]),
    "fast (-s 380)": ({"rate": 380}, [("speaks fast", S), ("slow, drawn-out speech", C)]),
    "pauses (SSML 900 ms breaks)": (
        {"breaks": True},
        [("long pauses", S), ("fluent, uninterrupted speech", C)],
    ),
    "plain (defaults)": ({}, [("fluent speech", S), ("long pauses", C), ("trembling voice", C)]),
    "tremor (6 Hz, +/-8 %)": ({"tremor": 0.08}, [("trembling voice", S)]),
    "quiet and low (-a 20 -p 10)": (
        {"amplitude": 20, "pitch": 10},
        [("quiet, low voice", S), ("loud, high-pitched shouting", C)],
    ),
}


def _tremor(audio: np.ndarray, depth: float, rate_hz: float = 6.0, sample_rate: int = 16_000) -> np.ndarray:
    """Read the signal at a speed of 1 + depth*sin(2*pi*rate*t): its pitch swings by +/-depth at `rate_hz`."""
    t = np.arange(len(audio)) / sample_rate
    warped = t + depth / (2 * np.pi * rate_hz) * (1 - np.cos(2 * np.pi * rate_hz * t))
    warped = warped[warped * sample_rate < len(audio) - 1]
    return np.interp(warped * sample_rate, np.arange(len(audio)), audio).astype(np.float32)


def _speech(sentence: str, settings: dict) -> np.ndarray:
    settings = dict(settings)
    tremor = settings.pop("tremor", 0.0)
    if settings.pop("breaks", False):
        words = sentence.split()
        thirds = [" ".join(words[i::3]) for i in range(3)]  # word order does not matter to the measures
        sentence = '<break time="900ms"/> '.join(thirds)
        settings["ssml"] = True
    audio = synth.speak(sentence, **settings)
    return _tremor(audio, tremor) if tremor else audio


def _pictures(astronaut: np.ndarray) -> dict[str, tuple[dict, list[tuple[str, str]]]]:
    """condition: (write_photo_clip arguments, [(visual cue, expected verdict)])."""
    grey = np.full_like(astronaut, 128)
    wide = grey.copy()
    small = astronaut[::3, ::3]
    wide[: small.shape[0], : small.shape[1]] = small
    close = np.kron(astronaut[20:276, 110:366], np.ones((2, 2, 1), np.uint8))
    bright = (255 - (255 - astronaut.astype(np.float32)) * 0.25).astype(np.uint8)
    return {
        "smiling photo": (
            {"image": astronaut},
            [
                ("smiling", S),
                ("frowning", C),
                ("maintains eye contact", S),
                ("avoids eye contact", C),
                ("sits still", S),
                ("fidgeting", C),
                ("eyes closed", C),
            ],
        ),
        "mirrored photo": (
            {"image": astronaut[:, ::-1]},
            [("smiling", S), ("scowling", C), ("looks away", C)],
        ),
        "panned 16 px/frame": (
            {"image": astronaut, "shift_px": 16},
            [("restless movements", S), ("motionless", C)],
        ),
        "darkened x0.15": (
            {"image": (astronaut * 0.15).astype(np.uint8)},
            [("dimly lit room", S), ("brightly lit scene", C)],
        ),
        "brightened": ({"image": bright}, [("brightly lit scene", S), ("dark room", C)]),
        "close-up crop": ({"image": close}, [("close-up of the face", S), ("wide shot", C), ("smiling", S)]),
        "wide shot (1/3 size)": ({"image": wide}, [("wide shot", S), ("close-up", C)]),
        "upside down": ({"image": astronaut[::-1]}, [("face not visible", S), ("smiling", C)]),
        "blank frames": ({"image": grey}, [("face not visible", S), ("smiling", C)]),
    }


def build_cases(folder: Path) -> list[dict]:
    """Write every clip and return describe-shaped records, one per (clip, cue), with the expected verdict."""
    from skimage import data

    plain = np.full((48, 64, 3), 128, np.uint8)
    cases = []
    for condition, (settings, claims) in VOICES.items():
        for sentence in SENTENCES:
            path = folder / f"voice-{len(cases):03d}.mp4"
            synth.write_photo_clip(path, plain, signal=_speech(sentence, settings))
            for cue, expected in claims:
                cases.append(
                    {
                        "source": str(path),
                        "condition": condition,
                        "acoustic_cues": [cue],
                        "expected": expected,
                    }
                )
    silent = synth.write_clip(folder / "silent.mp4", audio=False)
    for cue, expected in [("silent", S), ("shouting", C)]:
        cases.append(
            {
                "source": str(silent),
                "condition": "no audio track",
                "acoustic_cues": [cue],
                "expected": expected,
            }
        )
    for condition, (arguments, claims) in _pictures(data.astronaut()).items():
        path = folder / f"picture-{len(cases):03d}.mp4"
        synth.write_photo_clip(path, **arguments)
        for cue, expected in claims:
            cases.append(
                {"source": str(path), "condition": condition, "visual_cues": [cue], "expected": expected}
            )
    for i, case in enumerate(cases):
        case["id"] = f"case-{i:03d}"
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Keep the clips, predictions and results here.")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="verify-check-"))
    folder.mkdir(parents=True, exist_ok=True)
    cases = build_cases(folder)
    pred = folder / "predictions.jsonl"
    pred.write_text("".join(json.dumps(c) + "\n" for c in cases))
    result = verify_file(pred, semantic=False)
    by_claim: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    for case, row in zip(cases, result["records"], strict=True):
        got = row["verification"]["cues"][0]["verdict"]
        cue = (case.get("acoustic_cues") or case["visual_cues"])[0]
        key = f"{cue} -> {case['expected']}"
        by_claim[key][0] += got == case["expected"]
        by_claim[key][1] += 1
        case["got"] = got
        if got != case["expected"]:
            evidence = [c.get("evidence", c["measure"]) for c in row["verification"]["cues"][0]["claims"]]
            misses.append(
                f'- {case["condition"]}: "{cue}" expected {case["expected"]}, got {got} ({"; ".join(evidence)})'
            )
    (folder / "cases.json").write_text(json.dumps(cases, indent=1))
    correct = sum(case["got"] == case["expected"] for case in cases)
    print(f"{len(cases)} cases, {correct} correct ({100 * correct / len(cases):.1f} %)\n")
    print("| Cue (expected verdict) | Cases | Correct |\n|---|---:|---:|")
    for key, (right, total) in by_claim.items():
        print(f"| {key} | {total} | {right} |")
    if misses:
        print("\nMisses:\n" + "\n".join(misses))


if __name__ == "__main__":
    main()
