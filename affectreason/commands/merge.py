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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from affectreason.backbones.adapters import MERGE_STEPS, merge_adapter

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("merge", total=len(MERGE_STEPS))

        def on_step(name: str) -> None:
            bar.update(task, description=name, completed=MERGE_STEPS.index(name))

        path = merge_adapter(
            adapter, out, model=model, dtype=dtype, trust_remote_code=trust_remote_code, on_step=on_step
        )
    typer.echo(f"merged checkpoint written to {path}")


def register(app: typer.Typer) -> None:
    app.command("merge")(merge)
