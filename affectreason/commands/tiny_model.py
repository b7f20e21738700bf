"""CLI: `affectreason tiny-model FAMILY OUT_DIR`: a tiny random-weight checkpoint for tests and demos."""

from __future__ import annotations

from pathlib import Path

import typer

from affectreason.backbones.tiny import tiny_families  # light: the builders import transformers lazily


def tiny_model(
    family: str = typer.Argument(None, help=f"Backbone family: {', '.join(tiny_families())}."),
    out_dir: Path = typer.Argument(None, help="Folder to write the checkpoint into."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the weights."),
    list_families: bool = typer.Option(False, "--list", help="List the families and exit."),
) -> None:
    """Build a tiny random-weight checkpoint (model, tokenizer, processor) loadable with --model OUT_DIR."""
    from affectreason.backbones.tiny import build_tiny_checkpoint
    from affectreason.errors import AffectReasonError

    if list_families:
        typer.echo("\n".join(tiny_families()))
        return
    if family is None or out_dir is None:
        raise AffectReasonError("give a FAMILY and an OUT_DIR (see --list for the families)")
    path = build_tiny_checkpoint(family, out_dir, seed=seed)
    typer.echo(f"wrote a tiny {family} checkpoint to {path}")


def register(app: typer.Typer) -> None:
    app.command("tiny-model")(tiny_model)
