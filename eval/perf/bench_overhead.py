"""Bench runner overhead: the runner's wall time over a dataset against the bare engine's generate time on the
same clips and batches (tiny random Qwen2.5-Omni thinker, CPU). Goal: overhead (decoding, record building,
bookkeeping, durable writes) at most 15%, with the next batch's media decoded while the model generates.

    python eval/perf/bench_overhead.py [--samples 24] [--batch-size 4] [--max-new-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from affectreason.backbones.tiny import build_tiny_checkpoint
from affectreason.bench.adapters import check_data
from affectreason.bench.options import BenchOptions, select_samples
from affectreason.bench.runner import generate_pending
from affectreason.bench.store import PredictionStore
from affectreason.bench.suites import load_suite
from affectreason.bench.synthetic import write_data_root
from affectreason.describe import DescribeOptions, load_for_describe
from affectreason.engines import create_engine
from affectreason.prompts import load_prompt
from affectreason.request import Request


class TimedEngine:
    """Delegates to a real engine and adds up the seconds spent inside `generate`, so the runner's own time
    (wall minus generate) is measured within the same run, immune to load elsewhere on the machine."""

    def __init__(self, engine):
        self.engine, self.seconds = engine, 0.0
        self.name, self.model_id = engine.name, engine.model_id

    def generate(self, requests, sampling):
        start = time.perf_counter()
        try:
            return self.engine.generate(requests, sampling)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per synthetic clip")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    suite = load_suite("mer-unibench")
    root = write_data_root(
        suite, work / "dataset", n=args.samples, datasets=["mer2023"], duration=args.duration
    )
    checkpoint = build_tiny_checkpoint("qwen2_5_omni", work / "tiny")
    describe = DescribeOptions(
        frames=args.frames, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
    )
    options = BenchOptions(describe=describe, progress=False)
    engine = create_engine("hf", model=str(checkpoint), batch_size=args.batch_size)
    prompt = load_prompt(suite.prompt)
    scans = check_data(suite.select(["mer2023"]), root)
    plan = [(scan, select_samples(scan, None, (1, 1))) for scan in scans]
    samples = [s for _, selected in plan for _, s in selected]

    start = time.perf_counter()
    clips = []
    for sample in samples:
        clip = load_for_describe(sample.video, describe)
        clip.transcript = sample.transcript
        clips.append(clip)
    decode_s = time.perf_counter() - start
    requests = [Request(clip=c, prompt=prompt.text) for c in clips]
    batches = [requests[i : i + args.batch_size] for i in range(0, len(requests), args.batch_size)]

    def bare() -> float:
        start = time.perf_counter()
        for batch in batches:
            engine.generate(batch, describe.sampling())
        return time.perf_counter() - start

    def runner(index: int) -> tuple[float, float]:
        store = PredictionStore(work / f"run{index}")
        store.load()
        timed = TimedEngine(engine)
        start = time.perf_counter()
        generate_pending(plan, store, lambda: timed, options, prompt)
        return time.perf_counter() - start, timed.seconds

    bare()  # warm-up: first-call allocations and lazy imports
    bare_s, runner_s, inside_s = [], [], []
    for index in range(args.repeats):  # interleaved, so load on the machine affects both alike
        bare_s.append(bare())
        wall, inside = runner(index)
        runner_s.append(wall)
        inside_s.append(inside)
    g, r = statistics.median(bare_s), statistics.median(runner_s)
    own = statistics.median([w / i - 1 for w, i in zip(runner_s, inside_s, strict=True)])
    print(f"{len(samples)} clips of {args.duration:.0f} s, batch {args.batch_size}, {args.frames} frames, "
          f"{args.max_new_tokens} new tokens, median of {args.repeats}")  # fmt: skip
    print(f"{'media decoding alone (serial)':<36}{decode_s:8.2f} s")
    print(f"{'bare engine.generate':<36}{g:8.2f} s   runs: {', '.join(f'{x:.2f}' for x in bare_s)}")
    print(
        f"{'bench runner (decode+generate+write)':<36}{r:8.2f} s   runs: {', '.join(f'{x:.2f}' for x in runner_s)}"
    )
    print(f"{'  of which inside engine.generate':<36}{statistics.median(inside_s):8.2f} s")
    print(f"runner vs bare engine (separate runs): {100 * (r / g - 1):+.1f}%")
    print(f"runner's own time over its generate time (same run): {100 * own:+.1f}% "
          f"(goal <= 15%: {'ok' if own <= 0.15 else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
