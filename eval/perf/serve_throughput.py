"""Serving throughput: the in-process OpenAI-compatible server at concurrency 1, 8 and 32 against sequential
in-process `describe` on the same clips (goal: batching at least doubles throughput at concurrency 8).

Run: python eval/perf/serve_throughput.py [--model PATH] [--clips 32] [--max-new-tokens 32] [--max-batch-size 8]
[--repeats 3] [--device cpu|cuda] [--gpu]. Without --model a tiny random Qwen2.5-Omni thinker is built in a temp dir.
Sequential describe decodes each clip with `load_clip` and generates it alone. The server side is measured
as a client sees it: each request is the clip's video part (the mp4 file as a data URL, so the server
decodes it too) plus the prompt, sent with the official `openai` client from N threads; requests/s over the
whole run and the p50/p95 of per-request latency. With --gpu, offline vLLM on the same clips is added where
vllm is installed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from affectreason import synth
from affectreason.backbones import load_backbone
from affectreason.backbones.tiny import build_tiny_checkpoint
from affectreason.describe import DescribeOptions, describe_clips
from affectreason.engines.hf import HFEngine
from affectreason.media import load_clip
from affectreason.prompts import load_prompt
from affectreason.request import Request
from affectreason.serve.server import BackgroundServer, ServeOptions, build_app
from affectreason.serve.wire import data_url

FAMILIES = ("happy", "sad", "angry", "fearful", "surprised", "neutral")
BASELINE = "sequential describe (in process)"


def _median(values: list[tuple]) -> tuple:
    """The run with the median requests/s (its latencies with it)."""
    return sorted(values, key=lambda v: v[0])[len(values) // 2]


def sequential_describe(paths: list[Path], engine, options: DescribeOptions) -> float:
    """Requests/s of one clip at a time through `describe_clips` (decoding included)."""
    start = time.perf_counter()
    for path in paths:
        clip = load_clip(path, frames=options.frames)
        assert len(describe_clips([clip], engine, options)) == 1
    return len(paths) / (time.perf_counter() - start)


def served(
    url: str, paths: list[Path], options: DescribeOptions, concurrency: int
) -> tuple[float, float, float]:
    """(requests/s, p50 s, p95 s) with `concurrency` client threads."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    prompt = load_prompt(options.prompt).text
    bodies = [
        [
            {"type": "video_url", "video_url": {"url": data_url("video/mp4", p.read_bytes())}},
            {"type": "text", "text": prompt},
        ]
        for p in paths
    ]

    def one(content: list[dict]) -> float:
        start = time.perf_counter()
        client.chat.completions.create(
            model="bench",
            messages=[{"role": "user", "content": content}],
            max_tokens=options.max_new_tokens,
            extra_body={"affectreason": {"frames": options.frames}},
        )
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = sorted(pool.map(one, bodies))
    rps = len(bodies) / (time.perf_counter() - start)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    return rps, statistics.median(latencies), p95


def vllm_offline(model: str, paths: list[Path], options: DescribeOptions) -> float | None:
    from affectreason.engines.vllm import VLLMEngine, vllm_available

    if not vllm_available():
        return None
    engine = VLLMEngine(model, gpu_memory_utilization=0.5)
    prompt = load_prompt(options.prompt).text
    engine.generate(
        [Request(load_clip(paths[0], frames=options.frames), prompt)], options.sampling()
    )  # warm-up
    start = time.perf_counter()
    requests = [Request(load_clip(p, frames=options.frames), prompt) for p in paths]
    assert len(engine.generate(requests, options.sampling())) == len(paths)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a checkpoint (default: a tiny random Qwen2.5-Omni thinker)")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument("--gpu", action="store_true", help="also measure offline vLLM (when installed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or str(build_tiny_checkpoint("qwen2_5_omni", folder / "tiny"))
        paths = [
            synth.write_emotion_clip(
                folder / f"clip{i}.mp4", FAMILIES[i % len(FAMILIES)], seed=i, duration=2.0
            )
            for i in range(args.clips)
        ]
        options = DescribeOptions(frames=args.frames, max_new_tokens=args.max_new_tokens, batch_size=1)
        engine = HFEngine(load_backbone(model, device=args.device), batch_size=args.max_batch_size)
        app = build_app(engine, ServeOptions(served_model_name="bench", max_batch_size=args.max_batch_size))
        runs: dict[str, list[tuple[float, float | None, float | None]]] = {}
        batches: dict[int, list[int]] = {}
        with BackgroundServer(app) as server:
            sequential_describe(paths[:2], engine, options)  # warm-up
            served(server.url, paths[:2], options, 2)
            # Interleaved repeats, medians reported: the machine's load drifts during a run.
            for _ in range(args.repeats):
                runs.setdefault(BASELINE, []).append(
                    (sequential_describe(paths, engine, options), None, None)
                )
                for concurrency in (1, 8, 32):
                    before = len(app.state.batcher.batches)
                    runs.setdefault(f"server, concurrency {concurrency}", []).append(
                        served(server.url, paths, options, concurrency)
                    )
                    batches.setdefault(concurrency, []).extend(app.state.batcher.batches[before:])
        rows = [(name, *_median(values)) for name, values in runs.items()]
        baseline = rows[0][1]
        if args.gpu:
            rps = vllm_offline(model, paths, options)
            rows.append(("offline vLLM (all clips at once)", rps, None, None))

    print(
        f"{args.clips} clips, {args.frames} frames, {args.max_new_tokens} new tokens, max batch {args.max_batch_size}"
    )
    print(f"{'run':<36} {'req/s':>8} {'vs describe':>12} {'p50 s':>8} {'p95 s':>8}")
    for name, rps, p50, p95 in rows:
        if rps is None:
            print(f"{name:<36} {'n/a (vllm not installed)':>30}")
            continue
        p50s = f"{p50:8.3f}" if p50 is not None else f"{'-':>8}"
        p95s = f"{p95:8.3f}" if p95 is not None else f"{'-':>8}"
        print(f"{name:<36} {rps:8.2f} {rps / baseline:11.2f}x {p50s} {p95s}")
    for concurrency, sizes in batches.items():
        print(f"concurrency {concurrency}: mean engine batch {statistics.mean(sizes):.1f}, max {max(sizes)}")


if __name__ == "__main__":
    main()
