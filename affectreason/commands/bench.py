"""CLI: `affectreason bench SUITE`, `bench check`, `bench merge`: benchmark suites over the released data."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from affectreason.commands import options
from affectreason.paths import suites_dir

bench_app = typer.Typer(
    no_args_is_help=True,
    help="Run EMER, OV-MER, MER-UniBench, MME-Emotion and EmoBench-M over the released data on local disk "
    "(resumable, sharded).",
)


_SUITE_DEFAULT = "Default: the suite's generation_kwargs, else {}."


def _datasets(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


_SUITE = typer.Argument(
    ...,
    help="A packaged suite (mer-unibench, ov-mer, emer, mme-emotion, emobench-m) or a suite YAML file.",
)
_DATA_ROOT = typer.Option(..., "--data-root", help="The `dataset/` folder holding the dataset folders.")
_DATASETS = typer.Option(None, "--datasets", help="Only these datasets, comma-separated (e.g. mer2023,meld).")
_LIMIT = typer.Option(None, "--limit", help="At most N samples per dataset (the first N in file order).")
_RETRY_FAILED = typer.Option(
    False, "--retry-failed", help="Retry every failed clip (resume retries each up to 3 times)."
)
_PROTOCOL = typer.Option("affectreason", "--protocol", help="affectreason (default) or mer-unibench.")
_WHEEL_DIR = typer.Option(None, "--wheel-dir", help="Published wheel files, for --protocol mer-unibench.")
_REPETITION_PENALTY = typer.Option(None, "--repetition-penalty", help=_SUITE_DEFAULT.format("1: off"))
_ATTRIBUTION = typer.Option(
    False, "--attribution", help="Also run video-, audio- and text-only ablations per sample."
)
_JUDGE_ENDPOINT = typer.Option(
    None,
    "--judge-endpoint",
    help="An OpenAI-compatible judge for the judged scores (MME-Emotion, EmoBench-M).",
)
_JUDGE_API_KEY = typer.Option(
    None, "--judge-api-key", envvar="AFFECTREASON_JUDGE_API_KEY", help="API key for --judge-endpoint."
)


def run(
    suite: str = _SUITE,
    data_root: Path = _DATA_ROOT,
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/bench-SUITE)."),
    model: str = options.MODEL,
    adapter: str = options.ADAPTER,
    engine: str = options.ENGINE,
    endpoint: str = options.ENDPOINT,
    api_key: str = options.API_KEY,
    datasets: str = _DATASETS,
    limit: int = _LIMIT,
    shard: str = typer.Option(None, "--shard", help="i/n: run the i-th of n deterministic shards (1-based)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip samples already in --out."),
    retry_failed: bool = _RETRY_FAILED,
    protocol: str = _PROTOCOL,
    wheel_dir: Path = _WHEEL_DIR,
    batch_size: int = options.BATCH_SIZE,
    frames: int = options.FRAMES,
    fps: float = options.FPS,
    max_frames: int = options.MAX_FRAMES,
    max_pixels: int = options.MAX_PIXELS,
    temperature: float = typer.Option(None, "--temperature", help=_SUITE_DEFAULT.format("0: greedy")),
    top_p: float = typer.Option(None, "--top-p", help=_SUITE_DEFAULT.format(1)),
    top_k: int = typer.Option(None, "--top-k", help=_SUITE_DEFAULT.format("0: off")),
    min_p: float = typer.Option(None, "--min-p", help=_SUITE_DEFAULT.format("0: off")),
    repetition_penalty: float = _REPETITION_PENALTY,
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help=_SUITE_DEFAULT.format(512)),
    seed: int = options.SEED,
    dtype: str = options.DTYPE,
    quantization: str = options.QUANTIZATION,
    device: str = options.DEVICE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    attribution: bool = _ATTRIBUTION,
    judge_endpoint: str = _JUDGE_ENDPOINT,
    judge_model: str = typer.Option(None, "--judge-model", help="The judge's model (default: its first)."),
    judge_max_tokens: int = typer.Option(512, "--judge-max-tokens", help="Longest judge reply."),
    judge_api_key: str = _JUDGE_API_KEY,
) -> None:
    """Run (or resume) a suite: predictions.jsonl, results.json, results.md and report.html in --out."""
    from functools import partial

    from affectreason.backbones import DEFAULT_MODEL
    from affectreason.bench.options import BenchOptions, parse_shard
    from affectreason.bench.report import summary_text
    from affectreason.bench.runner import run_bench
    from affectreason.describe import DescribeOptions
    from affectreason.engines import EngineOptions
    from affectreason.judge import JudgeOptions

    if adapter and not model and not endpoint:  # the base the adapter records, also in the run manifest
        from affectreason.backbones.adapters import adapter_base

        model = adapter_base(adapter)
    flags = dict(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    sampling = DescribeOptions(
        frames=frames, fps=fps, max_frames=max_frames, max_pixels=max_pixels, batch_size=batch_size
    )
    options = BenchOptions(
        describe=_with_decoding(sampling, suite, flags),
        datasets=_datasets(datasets), limit=limit, shard=parse_shard(shard), resume=resume, protocol=protocol,
        wheel_dir=str(wheel_dir) if wheel_dir else None, model=model or endpoint or DEFAULT_MODEL, adapter=adapter,
        engine="openai" if endpoint else engine, progress=not quiet, attribution=attribution,
        retry_failed=retry_failed,
        judge=JudgeOptions(judge_endpoint, judge_model, judge_api_key, judge_max_tokens) if judge_endpoint else None,
    )  # fmt: skip
    if attribution:  # a clip's ablations share its engine batch
        from affectreason.attribution import RUNS_PER_CLIP

        batch_size *= RUNS_PER_CLIP
    engine_options = EngineOptions(
        engine, model, adapter, endpoint, api_key, dtype, quantization, device, trust_remote_code
    )
    out = out or Path("runs") / f"bench-{Path(suite).stem.replace('_', '-')}"
    results = run_bench(suite, data_root, partial(engine_options.create, batch_size=batch_size), out, options)
    typer.echo(summary_text(results, out))


def _with_decoding(describe: Any, suite: str, flags: dict[str, Any]) -> Any:
    """The suite's `generation_kwargs` over the defaults, then the decoding flags given on the command line."""
    from affectreason.bench.suites import load_suite

    describe = describe.with_decoding(load_suite(suite).generation_kwargs, f"suite {suite} generation_kwargs")
    return describe.with_decoding({k: v for k, v in flags.items() if v is not None}, "the command line")


def check(
    suite: str = typer.Argument(..., help="A packaged suite or a suite YAML file."),
    data_root: Path = typer.Option(
        ..., "--data-root", help="The `dataset/` folder holding the dataset folders."
    ),
    datasets: str = typer.Option(None, "--datasets", help="Only these datasets, comma-separated."),
) -> None:
    """Check that every annotation file, subtitle file and video of a suite is where it should be."""
    from affectreason.bench.adapters import check_data
    from affectreason.bench.suites import load_suite

    for scan in check_data(load_suite(suite).select(_datasets(datasets)), data_root):
        typer.echo(f"ok  {scan.spec.name:<12} {len(scan.samples):>6} samples  {scan.folder}")


def merge(
    out: Path = typer.Argument(..., help="The merged run folder (its own predictions are kept, if any)."),
    sources: list[Path] = typer.Argument(..., help="Shard run folders to merge into OUT."),
    protocol: str = typer.Option(
        "affectreason", "--protocol", help="affectreason (default) or mer-unibench."
    ),
    wheel_dir: Path = typer.Option(
        None, "--wheel-dir", help="Published wheel files, for --protocol mer-unibench."
    ),
) -> None:
    """Merge shard folders into OUT, then score and write the results and report there."""
    from affectreason.bench.report import summary_text
    from affectreason.bench.runner import merge_runs

    results = merge_runs(out, list(sources), protocol, str(wheel_dir) if wheel_dir else None)
    typer.echo(summary_text(results, out))


def _suite_command(name: str):
    """`bench NAME ...`: `run` with the suite fixed."""

    def command(**kwargs) -> None:
        run(suite=name, **kwargs)

    signature = inspect.signature(run)
    command.__signature__ = signature.replace(
        parameters=[p for n, p in signature.parameters.items() if n != "suite"]
    )
    command.__annotations__ = {k: v for k, v in run.__annotations__.items() if k != "suite"}
    command.__doc__ = f"Run (or resume) the {name} suite into --out: predictions, results and the report."
    return command


def register(app: typer.Typer) -> None:
    bench_app.command("check")(check)
    bench_app.command("merge")(merge)
    bench_app.command("run")(run)
    for path in sorted(suites_dir().glob("*.yaml")):
        name = path.stem.replace("_", "-")
        bench_app.command(name)(_suite_command(name))
    app.add_typer(bench_app, name="bench")
