"""Recipe check pass 1, without torch: our sections' keys and types, value ranges of well-known trl fields,
reward names, data files, loggers in `report_to`, what the model family cannot do (see `train.config`)."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import typing
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.families import model_type_of, quantization_refusal
from affectreason.train.sections import FIXED, METHODS, SECTIONS, SHARED_DEFAULTS, Method, ModelSection


def suggest(key: str, candidates: list[str]) -> str:
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
            f"unknown recipe method {name!r}{suggest(str(name), known)} (known: {', '.join(known)})"
        )
    return METHODS[name]


def validate_fields(cls: type, values: dict[str, Any], prefix: str) -> tuple[dict[str, Any], list[str]]:
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


def section_fields(name: str) -> list[str]:
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
        fields = section_fields(name)
        unknown = [k for k in raw if k not in fields]
        candidates = [f"{name}.{f}" for f in fields]
        problems += [f"unknown recipe key '{name}.{k}'{suggest(f'{name}.{k}', candidates)}" for k in unknown]
        values, bad = validate_fields(
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


def split_recipe(data: dict[str, Any], method: Method) -> tuple[dict[str, Any], dict[str, Any]]:
    """(our sections, trl values) of a raw mapping; trl values get the method's defaults."""
    ours = {"method", "description", *method.sections}
    trl_values = {**SHARED_DEFAULTS, **method.defaults}
    trl_values.update({k: v for k, v in data.items() if k not in ours})
    return {k: data[k] for k in method.sections if k in data}, trl_values


def check_recipe(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Pass 1, without torch: our sections built and every value problem found, `(sections, problems)`."""
    method = _method(data)
    raw_sections, trl_values = split_recipe(data, method)
    sections, problems = _sections(data, method)
    flat = dict(trl_values)
    for name, raw in raw_sections.items():
        if isinstance(raw, dict):
            flat.update({f"{name}.{k}": v for k, v in raw.items()})
    problems += _value_problems(flat) + _semantic_problems(sections, trl_values, str(data["method"]))
    for key, value in FIXED.items():
        if key in data and data[key] != value:
            problems.append(f"{key}: must stay {value!r} (the multimodal collators read the media columns)")
    return sections, list(dict.fromkeys(problems))
