"""CLI: `affectreason recipes ls | show | cp | validate`: training recipes as data."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

recipes_app = typer.Typer(no_args_is_help=True, help="List, show, copy and validate training recipes.")


@recipes_app.command("ls")
def ls() -> None:
    """List the packaged recipes (name, method, description)."""
    from affectreason.train.config import list_recipes, read_recipe_data

    for name, path in list_recipes():
        data = read_recipe_data(path)
        typer.echo(f"{name:<32} {str(data.get('method', '?')):<5} {data.get('description', '')}")


@recipes_app.command("show")
def show(
    name: str = typer.Argument(..., help="A packaged recipe name or a recipe file."),
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. learning_rate=2e-4 data.frames=8."
    ),
) -> None:
    """Print the fully resolved recipe: our sections, then every field of trl's config (defaults filled in)."""
    from affectreason.train.config import load_recipe, recipe_to_yaml

    typer.echo(recipe_to_yaml(load_recipe(name, overrides or [])), nl=False)


@recipes_app.command("cp")
def cp(
    name: str = typer.Argument(..., help="A packaged recipe name, e.g. qwen2_5_omni_7b/sft_lora."),
    dest: Path = typer.Argument(..., help="Where to write the copy (a file, or a folder)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Copy a packaged recipe (comments included) to edit it."""
    from affectreason.errors import AffectReasonError
    from affectreason.train.config import resolve_recipe_path

    source = resolve_recipe_path(name)
    target = dest / source.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise AffectReasonError(f"{target} exists; pass --force to overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    typer.echo(f"wrote {target}")


@recipes_app.command("validate")
def validate(
    path: str = typer.Argument(..., help="A recipe file or packaged name."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides to check as well."),
) -> None:
    """Check every key and value of a recipe without loading a model; prints every problem, one per line.

    Value problems (NaN, zero or negative counts, unknown rewards, missing data files, loggers that are not
    installed) are found before trl is imported; key and type checks against trl's config follow.
    """
    from affectreason.train.config import RecipeError, load_recipe

    try:
        recipe = load_recipe(path, overrides or [])
    except RecipeError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"ok: {path} (method {recipe.method}, model {recipe.model.name_or_path})")


def register(app: typer.Typer) -> None:
    app.add_typer(recipes_app, name="recipes")
