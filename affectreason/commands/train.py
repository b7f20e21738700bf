"""CLI: `affectreason train sft`: fine-tune a backbone from a recipe (`train_app` is shared with grpo/dpo)."""

from __future__ import annotations

import typer

# `train grpo` / `train dpo` are added to this sub-typer by `affectreason.commands.train_rl`.
train_app = typer.Typer(no_args_is_help=True, help="Fine-tune a backbone from a recipe (LoRA / QLoRA).")


@train_app.command("sft")
def sft(
    recipe: str = typer.Argument(..., help="A recipe file or packaged name, e.g. qwen2_5_omni_7b/sft_lora."),
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. data.path=captions.csv output_dir=runs/sft1."
    ),
) -> None:
    """Supervised fine-tuning on captions: LoRA on the language model, one GPU or many (accelerate launch).

    Writes the adapter, processor, model card and run manifest to `train.output_dir`; resume with
    `train.resume_from_checkpoint=auto`.
    """
    from affectreason.train.config import SFTRecipe, load_recipe
    from affectreason.train.sft import run_sft

    loaded = load_recipe(recipe, overrides or [])
    if not isinstance(loaded, SFTRecipe):
        from affectreason.errors import AffectReasonError

        raise AffectReasonError(
            f"{recipe} is a '{loaded.method}' recipe; use `affectreason train {loaded.method}`"
        )
    out = run_sft(loaded)
    typer.echo(f"adapter written to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
