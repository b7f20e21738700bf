"""CLI: `affectreason data`: check caption files before a long training run (`data_app` is shared)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

# Other data commands (e.g. `data pairs`) are added to this sub-typer by their own modules.
data_app = typer.Typer(no_args_is_help=True, help="Check and prepare training data.")


@data_app.command("validate")
def validate(
    path: Path = typer.Argument(..., help="A caption file (.csv, .jsonl) or a `datasets` folder."),
    decode: bool = typer.Option(True, "--decode/--no-decode", help="Also decode every media file."),
    workers: int = typer.Option(4, "--workers", help="Media files decoded in parallel."),
    limit: int = typer.Option(5, "--limit", help="Offending rows shown per kind of problem."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every row: missing or undecodable media, empty captions, duplicate ids, label problems.

    Exits non-zero when any row has a problem.
    """
    from affectreason.train.data import validate_captions

    report = validate_captions(path, decode=decode, workers=workers)
    if as_json:
        typer.echo(json.dumps(report.to_dict(limit), indent=2))
    else:
        typer.echo(report.summary())
        for kind, problems in report.first(limit).items():
            typer.echo(f"  {kind} ({report.counts()[kind]}):")
            for p in problems:
                typer.echo(f"    row {p.row} [{p.id}]: {p.message}")
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
