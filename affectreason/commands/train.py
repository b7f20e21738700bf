"""CLI: `affectreason train sft|grpo|dpo`: fine-tune a backbone from a recipe."""

from __future__ import annotations

import typer

train_app = typer.Typer(no_args_is_help=True, help="Fine-tune a backbone from a recipe (LoRA / QLoRA).")


def load_for(method: str, recipe: str, overrides: list[str] | None):
    """The recipe, checked in full (before any model loads) and refused when it is another method's."""
    from affectreason.errors import AffectReasonError
    from affectreason.train.config import load_recipe

    loaded = load_recipe(recipe, overrides or [])
    if loaded.method != method:
        raise AffectReasonError(
            f"{recipe} is a '{loaded.method}' recipe; use `affectreason train {loaded.method}`"
        )
    return loaded


@train_app.command("sft")
def sft(
    recipe: str = typer.Argument(..., help="A recipe file or packaged name, e.g. qwen2_5_omni_7b/sft_lora."),
    overrides: list[str] = typer.Argument(
        None,
        help="key=value overrides: trl's own fields (learning_rate=2e-4) or ours (data.path=captions.csv).",
    ),
) -> None:
    """Supervised fine-tuning on captions: LoRA on the language model, one GPU or many (accelerate launch).

    Every field of trl's SFTConfig can be set in the recipe or as an override. Writes the adapter, processor,
    model card and run manifest to `output_dir`; resume with `resume_from_checkpoint=auto`.
    """
    from affectreason.train.sft import run_sft

    out = run_sft(load_for("sft", recipe, overrides))
    typer.echo(f"adapter written to {out}")


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


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
