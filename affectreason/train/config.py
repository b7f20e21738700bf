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
import difflib
import importlib.util
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from affectreason.boundedyaml import load_yaml
from affectreason.errors import AffectReasonError
from affectreason.families import model_type_of, quantization_refusal
from affectreason.paths import recipes_dir


@dataclass
class ModelSection:
    """The backbone to fine-tune: a hub id or local checkpoint, optionally an adapter to continue from."""

    name_or_path: str = "Qwen/Qwen2.5-Omni-7B"
    adapter: str | None = None
    dtype: str = "auto"
    quantization: Literal["4bit", "8bit"] | None = None  # "4bit": QLoRA with NF4
    trust_remote_code: bool = False
    finetuning: Literal["lora", "full"] = "lora"  # full: every weight outside the frozen towers trains
    freeze: list[Literal["vision", "audio"]] = field(default_factory=lambda: ["vision", "audio"])


@dataclass
class DataSection:
    """The caption file and how each clip is sampled before it reaches the processor."""

    path: str = ""
    eval_path: str | None = None
    frames: int | None = 8
    fps: float | None = None
    max_frames: int = 64
    max_pixels: int = 360 * 640
    prompt: str = "describe"
    target_format: Literal["any", "canonical"] = "any"  # canonical: every target must already be in it
    eval_max_new_tokens: int = 256  # answer length when the eval set is described during training


@dataclass
class LoraSection:
    """peft LoRA settings; `target_modules: null` uses the backbone's language-model-only default."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


@dataclass
class RewardsSection:
    """GRPO reward functions (registry names or `module:function`); their weights are trl's `reward_weights`."""

    funcs: list[str] = field(default_factory=lambda: ["emotion_wheel", "format"])
    wheel_level: int = 1  # emotion-wheel level the emotion_wheel reward compares at


SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "data": DataSection,
    "lora": LoraSection,
    "rewards": RewardsSection,
}


@dataclass(frozen=True)
class Method:
    """A training method: its trl config class and the sections its recipes carry."""

    config: str  # class name in `trl`
    sections: tuple[str, ...]
    defaults: dict[str, Any]  # where our default differs from trl's (the recipe may still set them)


_SHARED_DEFAULTS: dict[str, Any] = {
    "logging_first_step": True,
    "ddp_find_unused_parameters": False,
    "activation_checkpointing_kwargs": {"use_reentrant": False},
    "report_to": "auto",
}
METHODS: dict[str, Method] = {
    # max_length None: keep whole samples; media tokens cannot be cut (the collator refuses such a cut)
    "sft": Method("SFTConfig", ("model", "data", "lora"), {"max_length": None}),
    "grpo": Method(
        "GRPOConfig",
        ("model", "data", "lora", "rewards"),
        {"dataloader_num_workers": 0, "vllm_mode": "colocate"},
    ),
    "dpo": Method(
        "DPOConfig", ("model", "data", "lora"), {"max_length": None, "precompute_ref_log_probs": False}
    ),
}
# Fields the multimodal collators depend on: a recipe may not change them.
_FIXED: dict[str, Any] = {"remove_unused_columns": False}


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
    raise AffectReasonError(f"no recipe file or packaged recipe {str(path_or_name)!r}{_suggest(name, names)}")


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


# ---- pass 1: no torch ---------------------------------------------------------------------------------------


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:  # a misspelt leaf under the wrong prefix (e.g. the old `train.max_steps`) still gets a hint
        leaf = key.rsplit(".", 1)[-1]
        by_leaf = {c.rsplit(".", 1)[-1]: c for c in candidates}
        close = [by_leaf[m] for m in difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.7)]
    return f"; did you mean {close[0]!r}?" if close else ""


def _method(data: dict[str, Any]) -> Method:
    name = data.get("method")
    if not name:
        raise AffectReasonError("recipe has no 'method' key (sft, grpo, dpo)")
    if name not in METHODS:
        known = sorted(METHODS)
        raise AffectReasonError(
            f"unknown recipe method {name!r}{_suggest(str(name), known)} (known: {', '.join(known)})"
        )
    return METHODS[name]


def _validate_fields(cls: type, values: dict[str, Any], prefix: str) -> tuple[dict[str, Any], list[str]]:
    """`values` checked and coerced against `cls`'s field annotations (pydantic, lax): (values, problems)."""
    import pydantic

    hints = typing.get_type_hints(cls)
    spec = {name: (hints[name], ...) for name in values}
    model = pydantic.create_model(
        f"{cls.__name__}Values", __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **spec
    )
    try:
        return model.model_validate(values).model_dump(), []
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = prefix + ".".join(str(p) for p in err["loc"][:1])
            problems.append(f"{key}: {err['msg'].lower()}, got {_short(err['input'])}")
        return {}, list(dict.fromkeys(problems))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _section_fields(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[name])]


def _sections(data: dict[str, Any], method: Method) -> tuple[dict[str, Any], list[str]]:
    """Each section of the method built from the raw mapping, with every problem found."""
    built: dict[str, Any] = {}
    problems: list[str] = []
    for name in method.sections:
        raw = data.get(name) or {}
        if not isinstance(raw, dict):
            problems.append(f"{name}: expected a mapping, got {_short(raw)}")
            continue
        fields = _section_fields(name)
        unknown = [k for k in raw if k not in fields]
        candidates = [f"{name}.{f}" for f in fields]
        problems += [f"unknown recipe key '{name}.{k}'{_suggest(f'{name}.{k}', candidates)}" for k in unknown]
        values, bad = _validate_fields(
            SECTIONS[name], {k: v for k, v in raw.items() if k in fields}, f"{name}."
        )
        problems += bad
        if not bad and not unknown:
            built[name] = SECTIONS[name](**values)
    return built, problems


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# name -> (test, what it must be); applied to the fields of whichever method has them
_RULES: dict[str, tuple[typing.Callable[[float], bool], str]] = {
    **{
        name: (lambda v: v > 0, "greater than 0")
        for name in (
            "learning_rate",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "num_train_epochs",
            "logging_steps",
            "save_steps",
            "eval_steps",
            "max_length",
            "max_completion_length",
            "max_prompt_length",
            "temperature",
            "num_iterations",
            "steps_per_generation",
            "generation_batch_size",
            "vllm_tensor_parallel_size",
            "data.frames",
            "data.fps",
            "data.max_frames",
            "data.max_pixels",
            "data.eval_max_new_tokens",
            "lora.r",
            "lora.alpha",
            "rewards.wheel_level",
        )
    },
    **{
        name: (lambda v: v >= 0, "0 or more")
        for name in (
            "weight_decay",
            "warmup_steps",
            "beta",
            "epsilon",
            "epsilon_high",
            "max_grad_norm",
            "dataloader_num_workers",
            "save_total_limit",
            "seed",
        )
    },
    "max_steps": (lambda v: v == -1 or v > 0, "-1 (use num_train_epochs) or greater than 0"),
    "num_generations": (lambda v: v >= 2, "2 or more (GRPO compares completions within a group)"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "warmup_ratio": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "vllm_gpu_memory_utilization": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "lora.dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
}


def _non_finite(value: Any, key: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{key}: {value} is not a usable number"]
    if isinstance(value, str) and value.strip().lower().lstrip("+-.") in {"nan", "inf", "infinity"}:
        return [f"{key}: {value} is not a usable number"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{key}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _non_finite(v, key)]
    return []


def _value_problems(flat: dict[str, Any]) -> list[str]:
    problems = [p for key, value in flat.items() for p in _non_finite(value, key)]
    for key, value in flat.items():
        rule = _RULES.get(key)
        number = _number(value)
        if rule is None or number is None or not math.isfinite(number):
            continue
        test, expected = rule
        if not test(number):
            problems.append(f"{key}: must be {expected}, got {_short(value)}")
    return problems


# Python modules behind transformers' logger names, where the two differ
_LOGGER_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "azure_ml": ("azureml",)}


def _logger_problems(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else list(value or [])
    problems = []
    for name in names:
        if not isinstance(name, str) or name in {"auto", "all", "none"}:
            continue
        modules = _LOGGER_MODULES.get(name, (name,))
        if not any(importlib.util.find_spec(m) for m in modules):
            problems.append(f"report_to: the {name!r} logger is not installed (pip install {modules[0]})")
    return problems


def _tuning_problems(model: ModelSection, method: str) -> list[str]:
    problems = []
    kind = model_type_of(model.name_or_path) if model.quantization else None
    refusal = quantization_refusal(kind, model.quantization) if kind else None
    if refusal:
        problems.append(f"model.quantization: {refusal}")
    if model.quantization and not importlib.util.find_spec("bitsandbytes"):
        problems.append(
            f"model.quantization: {model.quantization} needs bitsandbytes (pip install bitsandbytes)"
        )
    if model.finetuning != "full":
        return problems
    if model.quantization:
        problems.append(
            "model.quantization: QLoRA stays LoRA-only; finetuning: full needs quantization: null"
        )
    if model.adapter:
        problems.append(
            "model.adapter: finetuning: full starts from a model (merge the adapter into it first)"
        )
    if method != "sft":
        problems.append(
            f"model.finetuning: full is for sft; {method} takes its reference from the LoRA adapter"
        )
    return problems


def _semantic_problems(sections: dict[str, Any], trl_values: dict[str, Any], method: str) -> list[str]:
    problems = []
    if sections.get("model") is not None:
        problems += _tuning_problems(sections["model"], method)
    data = sections.get("data")
    if data is not None:
        for key in ("path", "eval_path"):
            value = getattr(data, key)
            if value and not Path(value).expanduser().exists():
                problems.append(f"data.{key}: file not found: {value}")
    rewards = sections.get("rewards")
    if rewards is not None:
        from affectreason.train.rewards import get_reward

        if not rewards.funcs:
            problems.append("rewards.funcs: name at least one reward")
        for name in rewards.funcs:
            try:
                get_reward(name)
            except AffectReasonError as exc:
                problems.append(f"rewards.funcs: {exc}")
        weights = trl_values.get("reward_weights")
        if isinstance(weights, list) and len(weights) != len(rewards.funcs):
            problems.append(f"reward_weights: {len(weights)} weights for {len(rewards.funcs)} rewards.funcs")
    problems += _logger_problems(trl_values.get("report_to"))
    return problems


def _split(data: dict[str, Any], method: Method) -> tuple[dict[str, Any], dict[str, Any]]:
    """(our sections, trl values) of a raw mapping; trl values get the method's defaults."""
    ours = {"method", "description", *method.sections}
    trl_values = {**_SHARED_DEFAULTS, **method.defaults}
    trl_values.update({k: v for k, v in data.items() if k not in ours})
    return {k: data[k] for k in method.sections if k in data}, trl_values


def check_recipe(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Pass 1, without torch: our sections built and every value problem found, `(sections, problems)`."""
    method = _method(data)
    raw_sections, trl_values = _split(data, method)
    sections, problems = _sections(data, method)
    flat = dict(trl_values)
    for name, raw in raw_sections.items():
        if isinstance(raw, dict):
            flat.update({f"{name}.{k}": v for k, v in raw.items()})
    problems += _value_problems(flat) + _semantic_problems(sections, trl_values, str(data["method"]))
    for key, value in _FIXED.items():
        if key in data and data[key] != value:
            problems.append(f"{key}: must stay {value!r} (the multimodal collators read the media columns)")
    return sections, list(dict.fromkeys(problems))


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
    values.update(_FIXED)
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
            problems += [f"unknown recipe key '{key}.{k}'{_suggest(f'{key}.{k}', all_keys)}" for k in value]
        else:
            problems.append(f"unknown recipe key {key!r}{_suggest(key, all_keys)}")
    known = {k: v for k, v in trl_values.items() if k in fields}
    values, bad = _validate_fields(cls, known, "")
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
        keys += [f"{name}.{f}" for f in _section_fields(name)]
    return keys


def build_recipe(data: dict[str, Any], overrides: list[str] | None = None) -> Recipe:
    """A raw recipe mapping plus overrides -> `Recipe`; a `RecipeError` lists every problem found."""
    data = apply_overrides(data, list(overrides or []))
    sections, problems = check_recipe(data)
    if problems:  # refused before trl (and torch) are imported
        raise RecipeError(problems)
    method = str(data["method"])
    _, trl_values = _split(data, METHODS[method])
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
        set_values = {**recipe.trl_values, **_FIXED}
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
