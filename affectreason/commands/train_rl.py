"""CLI: `affectreason train grpo|dpo` and `affectreason data pairs` (reinforcement with emotion-wheel rewards)."""

from __future__ import annotations

from pathlib import Path

import typer

from affectreason.commands.data import data_app
from affectreason.commands.train import load_for, train_app


@train_app.command("grpo")
def grpo(
    recipe: str = typer.Argument(
        ..., help="A recipe file or packaged name, e.g. qwen2_5_omni_7b/grpo_wheel."
    ),
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. model.adapter=runs/sft1 data.path=labels.csv."
    ),
) -> None:
    """GRPO with emotion-wheel rewards: every rollout and log-prob pass sees the clip's video and audio.

    Rows need `video` and reference `emotions` (or a caption they can be read from). Writes the adapter,
    model card (with reward curves), manifest and `reward_curves.json` to `output_dir`. Every field of
    trl's GRPOConfig can be set in the recipe.
    """
    from affectreason.train.grpo import train_grpo

    out = train_grpo(load_for("grpo", recipe, overrides))
    typer.echo(f"adapter written to {out}")


@train_app.command("dpo")
def dpo(
    recipe: str = typer.Argument(..., help="A recipe file or packaged name, e.g. qwen2_5_omni_7b/dpo."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. data.path=pairs.jsonl."),
) -> None:
    """DPO on preference pairs (`video`, `chosen`, `rejected`), e.g. from `affectreason data pairs`."""
    from affectreason.train.dpo import train_dpo

    out = train_dpo(load_for("dpo", recipe, overrides))
    typer.echo(f"adapter written to {out}")


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
    """Commands are attached to the shared `train` and `data` sub-typers when this module is imported."""
