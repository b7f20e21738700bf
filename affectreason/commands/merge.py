"""CLI: `affectreason merge` (being written)."""

import typer


def register(app: typer.Typer) -> None:
    pass
