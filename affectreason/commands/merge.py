"""CLI: `affectreason merge`: fold a LoRA adapter into its base model as a standalone checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer


def merge(
    adapter: Path = typer.Argument(..., help="An adapter folder written by `affectreason train`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged checkpoint."),
    model: str = typer.Option(None, "--model", "-m", help="Base model (default: the adapter's own base)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bf16, fp16 or fp32."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
) -> None:
    """Write base model + adapter merged into one checkpoint (with the processor) that loads without peft."""
    from affectreason.train.merge import merge_adapter

    path = merge_adapter(adapter, out, model=model, dtype=dtype, trust_remote_code=trust_remote_code)
    typer.echo(f"merged checkpoint written to {path}")


def register(app: typer.Typer) -> None:
    app.command("merge")(merge)
