"""Serving throughput and fairness: `affectreason serve` (its own process, as users run it) against sequential
in-process `describe` on the same clips, for four workloads.

- equal clips: concurrency 1, 8 and 32 (goal: concurrency 8 at least 2x sequential describe);
- mixed sizes: clips of four resolutions and three lengths (goal: concurrency 8 at least 1.5x sequential),
  plus `describe` over the same folder at batch size 8 against batch size 1, and the engine alone on two
  threads: every clip's media processed beforehand (the vision encoders still run in the engine), all queued
  at once or one by one;
- mixed seeds: sampled requests, each with its own seed, at concurrency 8 against concurrency 1 (they share
  engine batches: the mean batch size is printed);
- head of line: the p95 latency of short text requests alone, and sent one after another while one
  near-context prompt is prefilled and generates (goal: at most 3x the unloaded p95).

Run: python eval/perf/serve_throughput.py [--model PATH] [--clips 32] [--max-new-tokens 32] [--max-batch-size 8]
[--repeats 3] [--device cpu|cuda] [--gpu] [--only equal,mixed,seeds,hol]. Without --model a tiny random
Qwen2.5-Omni thinker is built in a temp dir. Sequential describe decodes each clip with `load_clip` and
generates it alone, in this process. The server is measured as a client sees it: each request is the clip's
video part (the mp4 file as a data URL, so the server decodes it too) plus the prompt, sent with the official
`openai` client from N threads; requests/s over the whole run and the p50/p95 of per-request latency; engine
batch sizes come from the server's /metrics. With --gpu, offline vLLM on the equal clips is added where vllm
is installed.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from affectreason import synth
from affectreason.backbones import load_backbone
from affectreason.backbones.tiny import build_tiny_checkpoint
from affectreason.describe import DescribeOptions, describe_clips
from affectreason.engines.hf import HFEngine, Job
from affectreason.engines.wire import data_url
from affectreason.media import load_clip
from affectreason.prompts import load_prompt
from affectreason.request import Request

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


def _p95(latencies: list[float]) -> float:
    latencies = sorted(latencies)
    return latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]


def served(
    url: str, paths: list[Path], options: DescribeOptions, concurrency: int, seeds: bool = False
) -> tuple[float, float, float]:
    """(requests/s, p50 s, p95 s) with `concurrency` client threads; with `seeds`, sampled with one seed each."""
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

    def one(seed: int) -> float:
        sampling = {"temperature": 1.0, "seed": seed} if seeds else {}
        start = time.perf_counter()
        client.chat.completions.create(
            model="bench",
            messages=[{"role": "user", "content": bodies[seed]}],
            max_tokens=options.max_new_tokens,
            extra_body={"affectreason": {"frames": options.frames}},
            **sampling,
        )
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(one, range(len(bodies))))
    rps = len(bodies) / (time.perf_counter() - start)
    return rps, statistics.median(latencies), _p95(latencies)


def describe_folder(paths: list[Path], engine, options: DescribeOptions, batch_size: int) -> float:
    """Requests/s of `describe_clips` over all clips in chunks of `batch_size` (what `describe DIR` does)."""
    engine.batch_size = batch_size
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        clips = [load_clip(p, frames=options.frames) for p in paths[i : i + batch_size]]
        assert len(describe_clips(clips, engine, options)) == len(clips)
    return len(paths) / (time.perf_counter() - start)


def generation_only(paths: list[Path], engine, options: DescribeOptions, together: bool) -> float:
    """Requests/s of the engine alone, every clip processed beforehand (its vision encoders run in the engine):
    all queued in one call, or one clip per call."""
    prompt = load_prompt(options.prompt).text
    jobs = [Job(Request(load_clip(p, frames=options.frames), prompt), options.sampling()) for p in paths]
    for job in jobs:
        engine.prepare(job)
    start = time.perf_counter()
    for group in [jobs] if together else [[job] for job in jobs]:
        assert len(engine.complete(group)) == len(group)
    return len(paths) / (time.perf_counter() - start)


class Server:
    """`affectreason serve --engine hf` on a free loopback port, in its own process; `jobs()` reads /metrics."""

    def __init__(self, model: str, max_batch_size: int, device: str | None, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = ["affectreason", "serve", "--model", model, "--engine", "hf", "--port", str(port)]
        command += ["--served-model-name", "bench", "--max-batch-size", str(max_batch_size)]
        command += ["--device", device] if device else []
        self.root, self.url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1"
        self.process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.root}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit(f"the server did not start; see {log}")

    def jobs(self) -> tuple[float, float]:
        """(engine calls, jobs) so far."""
        import httpx

        text = httpx.get(f"{self.root}/metrics", timeout=10).text
        values = dict(line.split() for line in text.splitlines())
        return float(values["affectreason_engine_calls_total"]), float(
            values["affectreason_engine_jobs_total"]
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def head_of_line(
    url: str, engine, shorts: int, long_tokens: int, prompt_tokens: int | None = None
) -> tuple[float, float]:
    """(unloaded p95, p95 while a near-context prompt generates) of short text requests, in seconds."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    context = engine.context_length or 4096
    rng = random.Random(0)
    words = " ".join("".join(rng.choices("abcdefghij", k=rng.randint(2, 6))) for _ in range(context))
    tokenizer = engine.backbone.tokenizer
    ids = tokenizer(words)["input_ids"][: prompt_tokens or context - long_tokens - 64]
    long_prompt = tokenizer.decode(ids)

    def ask(text: str, max_tokens: int) -> float:
        start = time.perf_counter()
        client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": text}], max_tokens=max_tokens
        )
        return time.perf_counter() - start

    def short_p95() -> float:
        latencies = []
        for i in range(shorts):
            latencies.append(ask(f"How does speaker {i} feel?", 8))
            time.sleep(0.05)
        return _p95(latencies)

    alone = short_p95()
    long_time = ask(long_prompt, long_tokens)  # alone, to space the short requests over its run
    busy = threading.Thread(target=ask, args=(long_prompt, long_tokens))
    busy.start()
    time.sleep(0.05)  # the long prompt is queued first
    latencies = []
    while busy.is_alive() or len(latencies) < 5:
        latencies.append(ask(f"How does speaker {len(latencies)} feel?", 8))
        time.sleep(max(0.05, long_time / shorts))
    busy.join()
    return alone, _p95(latencies)


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


def _row(name: str, values: list[tuple], baseline: float) -> str:
    rps, p50, p95 = _median(values)
    p50s = f"{p50:8.3f}" if p50 is not None else f"{'-':>8}"
    p95s = f"{p95:8.3f}" if p95 is not None else f"{'-':>8}"
    return f"{name:<44} {rps:8.2f} {rps / baseline:11.2f}x {p50s} {p95s}"


def _table(title: str, runs: dict[str, list[tuple]]) -> None:
    print(f"\n{title}")
    print(f"{'run':<44} {'req/s':>8} {'vs first':>12} {'p50 s':>8} {'p95 s':>8}")
    baseline = _median(next(iter(runs.values())))[0]
    for name, values in runs.items():
        print(_row(name, values, baseline))


def _clips(folder: Path, count: int, mixed: bool) -> list[Path]:
    sizes = [(32, 32), (64, 48), (128, 96), (192, 144)] if mixed else [(32, 32)]
    durations = [1.0, 2.0, 4.0] if mixed else [2.0]
    return [
        synth.write_emotion_clip(
            folder / f"{'mixed' if mixed else 'equal'}{i}.mp4",
            FAMILIES[i % len(FAMILIES)],
            seed=i,
            duration=durations[i % len(durations)],
            size=sizes[i % len(sizes)],
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a checkpoint (default: a tiny random Qwen2.5-Omni thinker)")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument(
        "--long-tokens", type=int, default=256, help="head of line: the long request's tokens"
    )
    parser.add_argument(
        "--long-prompt-tokens",
        type=int,
        default=None,
        help="head of line: its prompt (default: fill the context)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--gpu", action="store_true", help="also measure offline vLLM (when installed)")
    parser.add_argument("--only", default="equal,mixed,seeds,hol", help="workloads to run, comma-separated")
    args = parser.parse_args()
    only = set(args.only.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or str(build_tiny_checkpoint("qwen2_5_omni", folder / "tiny"))
        equal, mixed = _clips(folder, args.clips, False), _clips(folder, args.clips, True)
        options = DescribeOptions(frames=args.frames, max_new_tokens=args.max_new_tokens, batch_size=1)
        engine = HFEngine(load_backbone(model, device=args.device), batch_size=args.max_batch_size)
        server = Server(model, args.max_batch_size, args.device, folder / "server.log")
        tables: dict[str, dict[str, list[tuple]]] = {}
        batches: dict[str, list[float]] = {}

        def record(table: str, name: str, value: tuple) -> None:
            tables.setdefault(table, {}).setdefault(name, []).append(value)

        def serve(table: str, name: str, paths: list[Path], concurrency: int, seeds: bool = False) -> None:
            calls, jobs = server.jobs()
            record(table, name, served(server.url, paths, options, concurrency, seeds))
            calls_after, jobs_after = server.jobs()
            batches.setdefault(f"{table}: {name}", []).append(
                (jobs_after - jobs) / max(1.0, calls_after - calls)
            )

        try:
            sequential_describe(equal[:2], engine, options)  # warm-up
            served(server.url, equal[:2], options, 2)
            # Interleaved repeats, medians reported: the machine's load drifts during a run.
            for _ in range(args.repeats):
                if "equal" in only:
                    record("equal clips", BASELINE, (sequential_describe(equal, engine, options), None, None))
                    for concurrency in (1, 8, 32):
                        serve("equal clips", f"server, concurrency {concurrency}", equal, concurrency)
                if "mixed" in only:
                    record("mixed sizes", BASELINE, (sequential_describe(mixed, engine, options), None, None))
                    serve("mixed sizes", "server, concurrency 8", mixed, 8)
                    for size in (1, args.max_batch_size):
                        rps = describe_folder(mixed, engine, options, size)
                        record("mixed sizes", f"describe folder, batch size {size}", (rps, None, None))
                    engine.batch_size = args.max_batch_size
                    for together, name in ((True, "all queued"), (False, "one by one")):
                        rps = generation_only(mixed, engine, options, together)
                        record("mixed sizes", f"engine alone, {name}", (rps, None, None))
                if "seeds" in only:
                    serve("mixed seeds (sampled)", "server, concurrency 1", equal, 1, seeds=True)
                    serve("mixed seeds (sampled)", "server, concurrency 8", equal, 8, seeds=True)
            if "hol" in only:
                alone, loaded = head_of_line(
                    server.url, engine, 20, args.long_tokens, args.long_prompt_tokens
                )
        finally:
            server.stop()
        if args.gpu and "equal" in only:
            rps = vllm_offline(model, equal, options)
            record("equal clips", "offline vLLM (all clips at once)", (rps or 0.0, None, None))

    print(
        f"{args.clips} clips, {args.frames} frames, {args.max_new_tokens} new tokens, max batch {args.max_batch_size}"
    )
    for title, runs in tables.items():
        _table(title, runs)
    print()
    for name, sizes in batches.items():
        print(f"{name}: mean engine batch {statistics.mean(sizes):.1f}")
    if "hol" in only:
        print(
            f"\nhead of line: short-request p95 {alone:.3f} s alone, {loaded:.3f} s under a long prompt"
            f" ({loaded / alone:.2f}x; goal <= 3x)"
        )


if __name__ == "__main__":
    main()
