"""CLI: `affectreason tiny_model` (being written)."""

import typer


def register(app: typer.Typer) -> None:
    pass
