"""Recipes: trl's own `SFTConfig` / `GRPOConfig` / `DPOConfig` fields at the top level, plus our small sections.

A recipe is YAML (read through `affectreason.boundedyaml`)::

    method: grpo                 # sft | grpo | dpo: whose trl config the top-level keys belong to
    description: one line for `recipes ls`
    model:   {name_or_path: Qwen/Qwen2.5-Omni-7B, adapter: null, quantization: null}
    data:    {path: labels.csv, frames: 8, prompt: describe}
    lora:    {r: 16, alpha: 32}
    rewards: {funcs: [emotion_wheel, format], wheel_level: 1}     # grpo only
    learning_rate: 1.0e-5        # any field of the method's trl config, under trl's own name
    num_generations: 8
    reward_weights: [1.0, 0.5]

`key=value` overrides set a trl field (`learning_rate=2e-4`) or a section field (`data.frames=4`); values are
YAML. Checking has two passes so that a bad recipe is refused before anything heavy is imported:

- `check_recipe` (no torch): our sections' keys and types, value ranges of well-known trl fields (NaN, zero or
  negative where trl would fail later), reward names, data files, loggers in `report_to`, QLoRA with `full`.
- `build_recipe` (imports trl): unknown top-level keys and value types against the method's config class
  (validated with pydantic), then the config object itself, so trl's own `__post_init__` checks run too.

Two values are ours, resolved when the config is built: `bf16` unset means "on where the GPU supports it"
(trl would force it on, which fails on a CPU), and `report_to: auto` means TensorBoard / W&B when installed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectreason.boundedyaml import load_yaml
from affectreason.errors import AffectReasonError
from affectreason.paths import recipes_dir
from affectreason.train.recipe_checks import (
    check_recipe,
    section_fields,
    split_recipe,
    suggest,
    validate_fields,
)
from affectreason.train.sections import (
    FIXED,
    METHODS,
    SECTIONS,
    DataSection,
    LoraSection,
    ModelSection,
    RewardsSection,
)


@dataclass
class Recipe:
    """A resolved recipe: our sections, the trl fields it sets (typed), and `args`, the method's trl config built
    from them to check the recipe (`trainer_args()` builds the one a trainer gets)."""

    method: str
    description: str
    model: ModelSection
    data: DataSection
    lora: LoraSection
    rewards: RewardsSection | None
    args: Any
    trl_values: dict[str, Any]

    def trainer_args(self) -> Any:
        """A fresh trl config for the trainer: call it after the model is loaded, because under `accelerate
        launch` with DeepSpeed, a config that exists while the model loads makes ZeRO-3 partition it at load."""
        return config_class(self.method)(**_hardware_values(self.trl_values))


class RecipeError(AffectReasonError):
    """Every problem of a recipe, one line each (the message joins them for single-line output)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


# ---- reading ------------------------------------------------------------------------------------------------


def resolve_recipe_path(path_or_name: str | Path) -> Path:
    """A recipe file: an existing path, or a packaged name such as `qwen2_5_omni_7b/sft_lora`."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = str(path_or_name).removesuffix(".yaml").removesuffix(".yml")
    packaged = recipes_dir() / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    names = [n for n, _ in list_recipes()]
    raise AffectReasonError(f"no recipe file or packaged recipe {str(path_or_name)!r}{suggest(name, names)}")


def read_recipe_data(path: Path) -> dict[str, Any]:
    """The raw YAML mapping of a recipe file (alias expansion and size bounded)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AffectReasonError(f"cannot read recipe {path}: {exc}") from None
    data = load_yaml(text, f"recipe {path}")
    if not isinstance(data, dict):
        raise AffectReasonError(f"recipe {path} must be a YAML mapping")
    return data


def list_recipes() -> list[tuple[str, Path]]:
    """Packaged recipes as `(name, path)`, e.g. `("qwen2_5_omni_7b/sft_lora", ...)`; accelerate configs excluded."""
    root = recipes_dir()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root)
        if rel.parts[0] != "accelerate":
            found.append((rel.with_suffix("").as_posix(), path))
    return found


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `key=value` / `section.key=value` overrides into a copy of the raw recipe mapping."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise AffectReasonError(f"override {item!r} is not key=value")
        key, text = (part.strip() for part in item.split("=", 1))
        if key == "method":
            raise AffectReasonError("the recipe method cannot be overridden; use a recipe of that method")
        value = load_yaml(text, f"override {key}") if text else ""
        *parents, leaf = key.split(".")
        node = data
        for parent in parents:
            if not isinstance(node.get(parent), dict):
                if parent in node and parent not in SECTIONS:
                    raise AffectReasonError(f"{key}: {parent!r} is not a section or a mapping")
                node[parent] = {}
            node = node[parent]
        if leaf in SECTIONS and not parents:
            raise AffectReasonError(
                f"{key!r} is a recipe section: set one of its keys, e.g. {key}.<name>=value"
            )
        node[leaf] = value
    return data


# ---- pass 2: trl ------------------------------------------------------------------------------------------


def config_class(method: str) -> type:
    """The trl config dataclass of a method (imports trl)."""
    import trl

    return getattr(trl, METHODS[method].config)


def _hardware_values(values: dict[str, Any]) -> dict[str, Any]:
    """Our `bf16` / `report_to: auto` meanings and the settings that depend on this machine."""
    import torch

    values = dict(values)
    if values.get("bf16") is None and not values.get("fp16"):
        values["bf16"] = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if values.get("report_to") == "auto":
        values["report_to"] = auto_loggers()
    workers = values.get("dataloader_num_workers")
    if isinstance(workers, int):  # more decoding workers than cores only thrashes
        values["dataloader_num_workers"] = min(workers, os.cpu_count() or 1)
    if values.get("eval_steps") and "eval_strategy" not in values:
        values["eval_strategy"] = "steps"
    values.update(FIXED)
    return values


def auto_loggers() -> list[str] | str:
    """`report_to: auto`: TensorBoard when installed, W&B when installed and configured (API key or WANDB_MODE)."""
    found = []
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        found.append("tensorboard")
    if importlib.util.find_spec("wandb") and (
        os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")
    ):
        found.append("wandb")
    return found or "none"


def _trl_config(
    method: str, trl_values: dict[str, Any], all_keys: list[str]
) -> tuple[Any, dict[str, Any], list[str]]:
    """(the config object, the recipe's trl values checked and typed, problems)."""
    cls = config_class(method)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    problems = []
    for key, value in trl_values.items():
        if key in fields:
            continue
        if isinstance(value, dict):  # e.g. a section of the old format (`train.max_steps`)
            problems += [f"unknown recipe key '{key}.{k}'{suggest(f'{key}.{k}', all_keys)}" for k in value]
        else:
            problems.append(f"unknown recipe key {key!r}{suggest(key, all_keys)}")
    known = {k: v for k, v in trl_values.items() if k in fields}
    values, bad = validate_fields(cls, known, "")
    problems += bad
    if problems:
        return None, {}, problems
    try:
        with _without_deepspeed_hook():
            return cls(**_hardware_values(values)), values, []
    except (ValueError, TypeError) as exc:
        return None, {}, [f"{method} config: {str(exc).strip().splitlines()[0]}"]


@contextlib.contextmanager
def _without_deepspeed_hook():
    """The config built to check a recipe must not register DeepSpeed's ZeRO-3 load hook (transformers does so
    for every config made under `accelerate launch` with DeepSpeed): the model loads first, as before."""
    saved = os.environ.pop("ACCELERATE_USE_DEEPSPEED", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["ACCELERATE_USE_DEEPSPEED"] = saved


def recipe_keys(method: str) -> list[str]:
    """Every settable key of a method's recipes: trl's config fields and `section.field` (imports trl)."""
    keys = [f.name for f in dataclasses.fields(config_class(method)) if f.init]
    for name in METHODS[method].sections:
        keys += [f"{name}.{f}" for f in section_fields(name)]
    return keys


def build_recipe(data: dict[str, Any], overrides: list[str] | None = None) -> Recipe:
    """A raw recipe mapping plus overrides -> `Recipe`; a `RecipeError` lists every problem found."""
    data = apply_overrides(data, list(overrides or []))
    sections, problems = check_recipe(data)
    if problems:  # refused before trl (and torch) are imported
        raise RecipeError(problems)
    method = str(data["method"])
    _, trl_values = split_recipe(data, METHODS[method])
    args, values, problems = _trl_config(method, trl_values, recipe_keys(method))
    if problems:
        raise RecipeError(problems)
    return Recipe(
        method=method,
        description=str(data.get("description") or ""),
        model=sections["model"],
        data=sections["data"],
        lora=sections["lora"],
        rewards=sections.get("rewards"),
        args=args,
        trl_values=values,
    )


def load_recipe(path_or_name: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe file or packaged name, apply `key=value` overrides, and check every key and value."""
    return build_recipe(read_recipe_data(resolve_recipe_path(path_or_name)), overrides)


# ---- writing ----------------------------------------------------------------------------------------------


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _plain(value: Any) -> Any:
    """YAML-safe data (enums by value)."""
    import enum

    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def recipe_to_dict(recipe: Recipe, full: bool = True) -> dict[str, Any]:
    """The recipe as plain data: our sections, then trl's fields, either every one (the recipe's values, trl's
    defaults elsewhere: a file that loads back as the same recipe) or only those the recipe set."""
    out: dict[str, Any] = {"method": recipe.method, "description": recipe.description}
    for name in METHODS[recipe.method].sections:
        out[name] = dataclasses.asdict(getattr(recipe, name))
    if full:
        fields = [f for f in dataclasses.fields(recipe.args) if f.init]
        set_values = {**recipe.trl_values, **FIXED}
        out.update({f.name: _plain(set_values.get(f.name, _default(f))) for f in fields})
    else:
        out.update(_plain(recipe.trl_values))
    return out


def recipe_to_yaml(recipe: Recipe, full: bool = True) -> str:
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe, full), sort_keys=False, default_flow_style=False)


def resolved_args(args: Any) -> dict[str, Any]:
    """Every field of a trl config as the trainer received it (derived values included), for the run manifest."""
    return _plain(args.to_dict())
