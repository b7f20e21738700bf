"""load_clip speed against the fewest raw decord/PyAV calls and against qwen-omni-utils' `process_mm_info`.

Run: python eval/perf/media.py [--repeats 5]. Writes a 60 s 720p and a 5 s H.264+AAC clip with synth into a
temp dir, then times 16 frames + full 16 kHz audio, best of N, side by side. Goals: load_clip within 1.3x of
the raw calls, at least 3x faster than process_mm_info.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from affectreason import synth
from affectreason.media import SAMPLE_RATE, _target_size, load_clip

FRAMES = 16
MAX_PIXELS = 360 * 640


def raw_calls(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The fewest library calls that produce the same arrays as load_clip (non-rotated file)."""
    import av
    import decord

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        w, h = _target_size(stream.width, stream.height, MAX_PIXELS) or (-1, -1)
        reader = decord.VideoReader(str(path), width=w, height=h)
        frames = reader.get_batch(np.linspace(0, len(reader) - 1, FRAMES).round().astype(int)).asnumpy()
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = [f.to_ndarray()[0] for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return frames, np.concatenate(chunks)


def qwen_utils(path: Path):
    from qwen_omni_utils import process_mm_info

    messages = [
        {
            "role": "user",
            "content": [{"type": "video", "video": str(path), "nframes": FRAMES, "max_pixels": MAX_PIXELS}],
        }
    ]
    return process_mm_info(messages, use_audio_in_video=True)


def qwen_available() -> str | None:
    """None when process_mm_info can run here, else why not."""
    try:
        import qwen_omni_utils  # noqa: F401
    except ImportError:
        return "qwen-omni-utils is not installed (pip install qwen-omni-utils)"
    if shutil.which("ffmpeg") is None:
        return "qwen-omni-utils needs an ffmpeg binary for audio (apt-get install -y ffmpeg)"
    return None


def best_of(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best time of each function, calls interleaved so that they all see the same machine load."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    skip_qwen = qwen_available()
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for name, duration, size in [
            ("60 s 1280x720", 60.0, (1280, 720)),
            ("5 s 1280x720", 5.0, (1280, 720)),
        ]:
            start = time.perf_counter()
            clips[name] = synth.write_clip(
                Path(tmp) / f"{int(duration)}s.mp4", duration=duration, fps=25, size=size, motion=0.5
            )
            print(f"wrote {name} in {time.perf_counter() - start:.1f} s")
        print(f"\n{FRAMES} frames (max_pixels {MAX_PIXELS}) + full 16 kHz audio, best of {args.repeats}")
        header = (
            f"{'clip':<16}{'load_clip':>11}{'raw calls':>11}{'ratio':>8}{'qwen utils':>12}{'speed-up':>10}"
        )
        print(header + "\n" + "-" * len(header))
        for name, path in clips.items():
            clip = load_clip(path, frames=FRAMES, max_pixels=MAX_PIXELS)
            frames, audio = raw_calls(path)
            n = min(len(audio), len(clip.audio))
            same = np.array_equal(clip.frames, frames) and np.array_equal(clip.audio[:n], audio[:n])
            ours, raw = best_of(
                [
                    lambda p=path: load_clip(p, frames=FRAMES, max_pixels=MAX_PIXELS),
                    lambda p=path: raw_calls(p),
                ],
                args.repeats,
            )
            row = f"{name:<16}{ours:>10.3f}s{raw:>10.3f}s{ours / raw:>7.2f}x"
            if skip_qwen is None:
                (qwen,) = best_of([lambda p=path: qwen_utils(p)], max(1, args.repeats // 2))
                row += f"{qwen:>11.3f}s{qwen / ours:>9.1f}x"
            print(row + ("" if same else "   (arrays differ!)"))
    print("\nratio = load_clip / raw calls (goal <= 1.3); speed-up = qwen utils / load_clip (goal >= 3)")
    if skip_qwen:
        print(f"qwen utils skipped: {skip_qwen}")


if __name__ == "__main__":
    main()
