"""Recipes as data: nested dataclasses loaded from YAML with typed `key=value` overrides and a method registry.

How it works (the contract every training method builds on):

- A recipe file is YAML whose top-level key `method` (`sft`, `grpo`, `dpo`, ...) selects a dataclass from
  the registry (`register_recipe(method, cls)`); every other key maps one to one onto a field of that
  dataclass, nested sections onto nested dataclasses. Unknown keys are an `AffectReasonError` that names
  the nearest valid key.
- Every recipe class subclasses `Recipe`, which carries the shared sections `model` (`ModelSection`),
  `data` (`DataSection`), `lora` (`LoraSection`) and `train` (`TrainSection`). A method adds its own
  section as one more dataclass field, e.g.::

      @dataclass
      class GRPOSection:
          num_generations: int = 4

      @dataclass
      class GRPORecipe(Recipe):
          grpo: GRPOSection = field(default_factory=GRPOSection)

      register_recipe("grpo", GRPORecipe)

  Keep such modules free of top-level torch imports: `recipes validate` and `--help` load them.
  Methods named in `_METHOD_MODULES` are imported on first use, so their registration happens lazily.
- `load_recipe(path_or_name, overrides)` reads a file (or a packaged name like `qwen2_5_omni_7b/sft_lora`,
  resolved under `affectreason.paths.recipes_dir()`), then applies overrides such as
  `train.learning_rate=2e-4`, `data.path=captions.csv` or the unambiguous leaf shortcut `output_dir=runs/x`.
  Values are parsed as YAML and coerced to the field's annotation (int, float, bool, str, lists, optional
  and `bool | str` unions); a value that does not fit is an error naming the key and the expected type.
- `recipe_to_dict(recipe)` gives the resolved recipe back as plain data (for manifests and `recipes show`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from affectreason.errors import AffectReasonError
from affectreason.paths import recipes_dir


@dataclass
class ModelSection:
    """The backbone to fine-tune: a hub id or local checkpoint, optionally an adapter to continue from."""

    name_or_path: str = "Qwen/Qwen2.5-Omni-7B"
    adapter: str | None = None
    dtype: str = "auto"
    quantization: Literal["4bit", "8bit"] | None = None  # "4bit": QLoRA with NF4
    trust_remote_code: bool = False


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
    num_workers: int = 2


@dataclass
class LoraSection:
    """peft LoRA settings; `target_modules: null` uses the backbone's language-model-only default."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


@dataclass
class TrainSection:
    """Trainer settings shared by every method (names follow transformers' TrainingArguments)."""

    output_dir: str = "runs/sft"
    max_steps: int = -1
    num_train_epochs: float = 1.0
    learning_rate: float = 1.0e-4
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 8
    gradient_checkpointing: bool = True
    bf16: bool | Literal["auto"] = "auto"  # "auto": on where the GPU supports it
    save_steps: int = 200
    save_total_limit: int | None = 2
    logging_steps: int = 10
    eval_steps: int | None = None
    seed: int = 42
    resume_from_checkpoint: str | None = None  # None, "auto" (latest in output_dir) or a checkpoint path
    report_to: str | list[str] = "auto"  # "auto": tensorboard / wandb when installed, else "none"


@dataclass
class Recipe:
    """The shared part of every recipe; subclasses add their method's own section."""

    method: str = ""
    description: str = ""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    lora: LoraSection = field(default_factory=LoraSection)
    train: TrainSection = field(default_factory=TrainSection)


@dataclass
class SFTSection:
    """Supervised fine-tuning specifics."""

    max_length: int | None = None  # drop the tail of longer sequences (None: keep everything)


@dataclass
class SFTRecipe(Recipe):
    sft: SFTSection = field(default_factory=SFTSection)


_REGISTRY: dict[str, type[Recipe]] = {}
# Methods whose recipe class is registered by importing a module (kept lazy so torch stays unimported).
_METHOD_MODULES = {"grpo": "affectreason.train.grpo", "dpo": "affectreason.train.dpo"}


def register_recipe(method: str, cls: type[Recipe]) -> type[Recipe]:
    """Register the recipe dataclass for `method` (a `Recipe` subclass); returns it, so it can decorate."""
    if not (isinstance(cls, type) and issubclass(cls, Recipe) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} must be a dataclass subclassing Recipe")
    _REGISTRY[method] = cls
    return cls


register_recipe("sft", SFTRecipe)


def recipe_class(method: str) -> type[Recipe]:
    """The registered dataclass for `method`, importing its module on first use."""
    if method not in _REGISTRY and method in _METHOD_MODULES:
        try:
            importlib.import_module(_METHOD_MODULES[method])
        except ImportError as exc:
            raise AffectReasonError(f"recipe method {method!r} is not available: {exc}") from None
    if method not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(_METHOD_MODULES))
        raise AffectReasonError(
            f"unknown recipe method {method!r}{_suggest(method, known)} (known: {', '.join(known)})"
        )
    return _REGISTRY[method]


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    if not close:  # a misspelt leaf under the right section still deserves a hint
        leaf = key.rsplit(".", 1)[-1]
        by_leaf = {c.rsplit(".", 1)[-1]: c for c in candidates}
        close = [by_leaf[m] for m in difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.6)]
    return f"; did you mean {close[0]!r}?" if close else ""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def field_paths(cls: type) -> list[str]:
    """Every settable dotted key of a recipe class (sections expanded to their leaves)."""
    paths: list[str] = []
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        if _is_section(tp):
            paths.extend(f"{f.name}.{sub}" for sub in field_paths(tp))
        else:
            paths.append(f.name)
    return paths


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Fit `value` to the annotation `tp`, or raise an error naming `key` and the expected type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.strip().lower() in {"none", "null", "~"} and type(None) in args:
            return None
        # Try the exact type first so `bool | str` keeps "auto" a string and `true` a bool.
        ordered = sorted((a for a in args if a is not type(None)), key=lambda a: not _fits_exactly(value, a))
        for arg in ordered:
            try:
                return _coerce(value, arg, key)
            except AffectReasonError:
                continue
        raise AffectReasonError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            if value == choice or (isinstance(value, str) and value == str(choice)):
                return choice
        raise AffectReasonError(f"{key}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise AffectReasonError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, key) for v in value]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        }:
            return value.strip().lower() in {"true", "yes", "on", "1"}
        raise AffectReasonError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise AffectReasonError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise AffectReasonError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise AffectReasonError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise AffectReasonError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise AffectReasonError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise AffectReasonError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise AffectReasonError(f"{key}: unsupported field type {_type_name(tp)}")


def _fits_exactly(value: Any, tp: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool) or (isinstance(value, str) and value.lower() in {"true", "false"})
    if tp in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typing.get_origin(tp) is list:
        return isinstance(value, (list, tuple))
    if typing.get_origin(tp) is typing.Literal:
        return value in typing.get_args(tp)
    return isinstance(value, tp) if isinstance(tp, type) else False


def _build(cls: type, data: dict[str, Any], prefix: str, all_keys: list[str]) -> Any:
    if not isinstance(data, dict):
        raise AffectReasonError(f"{prefix.rstrip('.') or 'recipe'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise AffectReasonError(f"unknown recipe key {dotted!r}{_suggest(dotted, all_keys)}")
        tp = hints[key]
        if _is_section(tp):
            kwargs[key] = _build(tp, value or {}, f"{dotted}.", all_keys)
        else:
            kwargs[key] = _coerce(value, tp, dotted)
    return cls(**kwargs)


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _resolve_key(key: str, all_keys: list[str]) -> str:
    """A dotted key, or an unambiguous leaf shortcut (`output_dir` -> `train.output_dir`)."""
    if key in all_keys:
        return key
    matches = [k for k in all_keys if k.rsplit(".", 1)[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if any(k.startswith(f"{key}.") for k in all_keys):
        raise AffectReasonError(f"{key!r} is a recipe section: set one of its keys, e.g. {key}.<name>=value")
    if len(matches) > 1:
        raise AffectReasonError(f"ambiguous recipe key {key!r}: use one of {', '.join(matches)}")
    raise AffectReasonError(f"unknown recipe key {key!r}{_suggest(key, all_keys)}")


def apply_overrides(data: dict[str, Any], overrides: list[str], all_keys: list[str]) -> dict[str, Any]:
    """Set `key=value` overrides into the raw recipe mapping (type checking happens when it is built)."""
    for item in overrides:
        if "=" not in item:
            raise AffectReasonError(f"override {item!r} is not key=value")
        key, text = item.split("=", 1)
        dotted = _resolve_key(key.strip(), all_keys)
        if dotted == "method":
            raise AffectReasonError("the recipe method cannot be overridden; use a recipe of that method")
        node = data
        *sections, leaf = dotted.split(".")
        for section in sections:
            if node.get(section) is None:
                node[section] = {}
            node = node[section]
            if not isinstance(node, dict):
                raise AffectReasonError(f"{section}: expected a mapping in the recipe")
        node[leaf] = _parse_value(text)
    return data


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
    """The raw YAML mapping of a recipe file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AffectReasonError(f"cannot read recipe {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise AffectReasonError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise AffectReasonError(f"recipe {path} must be a YAML mapping")
    return data


def build_recipe(data: dict[str, Any], overrides: list[str] | None = None) -> Recipe:
    """Build the registered dataclass from a raw mapping (with `method`) plus overrides."""
    data = copy.deepcopy(data)
    method = data.get("method")
    if not method:
        raise AffectReasonError("recipe has no 'method' key (sft, grpo, dpo, ...)")
    cls = recipe_class(str(method))
    all_keys = field_paths(cls)
    data = apply_overrides(data, list(overrides or []), all_keys)
    return _build(cls, data, "", all_keys)


def load_recipe(path_or_name: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe file or packaged name, apply `key=value` overrides, and check every key and type."""
    path = resolve_recipe_path(path_or_name)
    return build_recipe(read_recipe_data(path), overrides)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as plain data, in field order."""
    return dataclasses.asdict(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, default_flow_style=False)


def list_recipes() -> list[tuple[str, Path]]:
    """Packaged recipes as `(name, path)`, e.g. `("qwen2_5_omni_7b/sft_lora", ...)`; accelerate configs excluded."""
    root = recipes_dir()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root)
        if rel.parts[0] == "accelerate":
            continue
        found.append((rel.with_suffix("").as_posix(), path))
    return found
