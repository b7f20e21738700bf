"""Wall time of `describe --attribution` against plain `describe` on the same clips (goal: at most 3x).

Run: python eval/perf/attribution.py [--model PATH] [--clips 8] [--batch-size 4] [--max-new-tokens 32]
[--repeats 3] [--device cpu|cuda]. Without --model a tiny random Qwen2.5-Omni thinker is built in a temp dir.
Both runs go through `describe_paths` exactly as the CLI does (media decoding and parsing included, model
loading excluded), with the engine batch sizes the CLI uses (`--batch-size` clips; with attribution a clip's
ablations share its batch). Every clip has video, audio and a transcript, so all four runs happen per clip.
Warm-up once, then the runs alternate; the median of each is reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from affectreason import synth
from affectreason.attribution import RUNS_PER_CLIP, attribute_clips
from affectreason.backbones import load_backbone
from affectreason.backbones.tiny import build_tiny_checkpoint
from affectreason.describe import DescribeOptions, describe_clips, describe_paths
from affectreason.engines.hf import HFEngine


def timed(paths: list[Path], engine: HFEngine, options: DescribeOptions, batch) -> float:
    records: list[dict] = []
    start = time.perf_counter()
    failures = describe_paths(paths, engine, options, on_record=records.append, describe_batch=batch)
    elapsed = time.perf_counter() - start
    assert not failures and len(records) == len(paths), failures
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a checkpoint (default: a tiny random Qwen2.5-Omni thinker)")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or str(build_tiny_checkpoint("qwen2_5_omni", folder / "tiny"))
        paths = [
            synth.write_emotion_clip(
                folder / f"clip{i}.mp4",
                synth.EMOTION_FAMILIES[i % len(synth.EMOTION_FAMILIES)],
                seed=i,
                duration=2.0,
            )
            for i in range(args.clips)
        ]
        backbone = load_backbone(model, device=args.device)
        plain_engine = HFEngine(backbone, batch_size=args.batch_size)
        attribution_engine = HFEngine(backbone, batch_size=args.batch_size * RUNS_PER_CLIP)
        options = DescribeOptions(
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            subtitle="I really did not expect that.",
        )
        runs = {
            "describe": (plain_engine, describe_clips),
            "describe --attribution": (attribution_engine, attribute_clips),
        }
        for engine, batch in runs.values():
            timed(paths[: args.batch_size], engine, options, batch)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (engine, batch) in runs.items():
                times[name].append(timed(paths, engine, options, batch))

    plain = statistics.median(times["describe"])
    attributed = statistics.median(times["describe --attribution"])
    print(
        f"model {model if args.model else 'tiny qwen2_5_omni'} on {backbone.device}, {args.clips} clips, "
        f"batch {args.batch_size}, {args.max_new_tokens} new tokens, median of {args.repeats}"
    )
    print(f"{'run':<24}{'seconds':>10}{'per clip':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24}{median:>10.2f}{median / args.clips:>10.3f}")
    ratio = attributed / plain
    print(
        f"ratio attribution/plain: {ratio:.2f}x for {RUNS_PER_CLIP} runs per clip (goal <= 3x: {'met' if ratio <= 3 else 'missed'})"
    )


if __name__ == "__main__":
    main()
