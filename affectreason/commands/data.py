"""CLI: `affectreason data`: check caption files before a long training run (`data_app` is shared)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

# Other data commands (e.g. `data pairs`) are added to this sub-typer by their own modules.
data_app = typer.Typer(no_args_is_help=True, help="Check and prepare training data.")


@data_app.command("validate")
def validate(
    path: Path = typer.Argument(
        ..., help="A caption file (.csv, .jsonl, .json, ShareGPT) or a `datasets` folder."
    ),
    decode: bool = typer.Option(True, "--decode/--no-decode", help="Also decode every media file."),
    workers: int = typer.Option(4, "--workers", help="Media files decoded in parallel."),
    limit: int = typer.Option(5, "--limit", help="Offending rows shown per kind of problem."),
    canonical: bool = typer.Option(
        False, "--canonical", help="Captions must already be in the canonical response format."
    ),
    recipe: str = typer.Option(
        None, "--recipe", help="Check as this recipe will read the data (its data.target_format)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every row: missing or undecodable media (every file of a row), empty targets, duplicate ids,
    label problems, emotion labels off the wheel (a warning), and targets not in the canonical format.

    Exits non-zero when any row has a problem that stops it from training.
    """
    from affectreason.train.data import validate_captions

    if recipe:
        canonical = canonical or _recipe_expects_canonical(recipe)
    report = validate_captions(path, decode=decode, workers=workers, canonical=canonical)
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


def _recipe_expects_canonical(name: str) -> bool:
    """The recipe's `data.target_format`, read without importing trl."""
    from affectreason.errors import AffectReasonError
    from affectreason.train.config import check_recipe, read_recipe_data, resolve_recipe_path

    sections, problems = check_recipe(read_recipe_data(resolve_recipe_path(name)))
    if "data" not in sections:
        raise AffectReasonError(f"recipe {name}: {'; '.join(problems)}")
    return sections["data"].target_format == "canonical"


@data_app.command("convert")
def convert(
    path: Path = typer.Argument(
        ..., help="Rows in any layout `data validate` reads (CSV, JSONL, JSON, ShareGPT)."
    ),
    out: Path = typer.Argument(..., help="The JSONL file to write (media paths relative to its folder)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Convert ShareGPT / messages / JSON-array / CSV rows into affectreason's caption JSONL.

    Rows with problems are left out and counted; exits non-zero when any were (run `data validate`).
    """
    from affectreason.errors import AffectReasonError
    from affectreason.train.data import convert_captions

    if out.exists() and not force:
        raise AffectReasonError(f"{out} exists; pass --force to overwrite")
    report = convert_captions(path, out)
    skipped = report.rows - len(report.examples)
    typer.echo(
        f"wrote {len(report.examples)} rows to {out}"
        + (f" ({skipped} rows with problems left out)" if skipped else "")
    )
    if skipped:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
