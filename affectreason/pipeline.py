"""The old import path of describe and the engine factory, kept only while the files issue 13 is changing
(bench/runner.py, commands/bench.py, serve/launch.py) import from here; remove it with those imports.
Describe lives in `affectreason.describe`, engines are made by `affectreason.engines.create_engine`."""

from affectreason.describe import DescribeOptions, describe_clips, load_for_describe, prefetch
from affectreason.engines import create_engine

__all__ = ["DescribeOptions", "create_engine", "describe_clips", "load_for_describe", "prefetch"]
