"""What a bench run does (`BenchOptions`): dataset selection, sharding, resume, decoding and the scoring protocol;
which samples a shard takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from affectreason.bench.adapters import DatasetScan, Sample
from affectreason.describe import DescribeOptions
from affectreason.errors import AffectReasonError
from affectreason.judge import JudgeOptions


@dataclass
class BenchOptions:
    """What to run and how: dataset selection, sharding, resume, decoding (`describe`) and scoring protocol.

    `model`, `adapter` and `engine` are recorded in the run manifest (the engine itself comes from the factory).
    """

    describe: DescribeOptions = field(default_factory=DescribeOptions)
    datasets: list[str] | None = None
    limit: int | None = None
    shard: tuple[int, int] = (1, 1)
    resume: bool = True
    protocol: str = "affectreason"
    wheel_dir: str | None = None
    model: str | None = None
    adapter: str | None = None
    engine: str = "hf"
    progress: bool = True
    attribution: bool = False
    judge: JudgeOptions | None = None
    retry_failed: bool = False


def parse_shard(value: str | None) -> tuple[int, int]:
    """`i/n` with 1 <= i <= n (the i-th of n workers)."""
    if not value:
        return (1, 1)
    try:
        i, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise AffectReasonError(f"--shard takes i/n, e.g. 2/8, got '{value}'") from None
    if n < 1 or not 1 <= i <= n:
        raise AffectReasonError(f"--shard {value}: need 1 <= i <= n (shards are numbered from 1)")
    return i, n


def select_samples(scan: DatasetScan, limit: int | None, shard: tuple[int, int]) -> list[tuple[int, Sample]]:
    """The first `limit` samples in annotation order, then every n-th from position i-1: `(position, sample)`."""
    if limit is not None and limit < 1:
        raise AffectReasonError(f"--limit must be at least 1, got {limit}")
    chosen = scan.samples[:limit] if limit else scan.samples
    i, n = shard
    return [(p, s) for p, s in enumerate(chosen) if p % n == i - 1]
