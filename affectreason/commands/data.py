"""CLI: `affectreason data validate|convert|pairs`: check and convert caption files before a long training run,
and build preference pairs for DPO."""

from __future__ import annotations

import json
from pathlib import Path

import typer

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


@data_app.command("pairs")
def pairs(
    model: str = typer.Argument(..., help="An adapter folder (its base model is read from it) or a model."),
    clips: Path = typer.Argument(..., help="Caption file (CSV/JSONL) with video and reference emotions."),
    out: Path = typer.Option(..., "--out", help="Where to write the pairs (JSONL)."),
    n: int = typer.Option(8, "--n", help="Responses sampled per clip."),
    margin: float = typer.Option(0.2, "--margin", help="Keep a pair only when best - worst exceeds this."),
    rewards: str = typer.Option(
        "emotion_wheel=1,format=0.5", "--rewards", help="name=weight, comma separated."
    ),
    base: str = typer.Option(
        None, "--base", help="Base model when MODEL is an adapter without a recorded base."
    ),
    temperature: float = typer.Option(1.0, "--temperature"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    frames: int = typer.Option(8, "--frames"),
    prompt: str = typer.Option("describe", "--prompt"),
    seed: int = typer.Option(0, "--seed"),
    prefer_faithful: bool = typer.Option(
        False,
        "--prefer-faithful",
        help="Among responses of similar score, reject the one citing cues the clip contradicts.",
    ),
) -> None:
    """Self-built preference pairs: sample N responses per clip, score them with the rewards, keep best vs worst.

    Each line holds the clip, the chosen and rejected responses and every score, so the choice is auditable.
    """
    from affectreason.train.pairs import PairOptions, pairs_from_files, parse_weights, why_no_pairs

    options = PairOptions(
        n=n,
        margin=margin,
        weights=parse_weights(rewards),
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        frames=frames,
        prompt=prompt,
        seed=seed,
        prefer_faithful=prefer_faithful,
    )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    columns = (TextColumn("sampling pairs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("pairs", total=None)
        summary = pairs_from_files(
            model,
            clips,
            out,
            options,
            base=base,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if not summary["pairs"]:
        err.print(f"warning: {why_no_pairs(summary, options)}", markup=False, highlight=False, soft_wrap=True)
    typer.echo(f"{summary['pairs']} pairs from {summary['clips']} clips written to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
