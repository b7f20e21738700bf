"""One decoding spec: `SamplingParams`, validated once, translated to HF, vLLM and OpenAI request parameters."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from affectreason.errors import AffectReasonError

if TYPE_CHECKING:
    from transformers import GenerationConfig

# Token ids are the only thing taken from a checkpoint's generation_config.json: its sampling knobs
# (repetition_penalty, top_k, ...) would silently change "greedy" output on one engine only.
_CHECKPOINT_TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


@dataclass(frozen=True)
class SamplingParams:
    """Decoding parameters: greedy (temperature 0) by default. `top_k` 0, `min_p` 0 and
    `repetition_penalty` 1 switch those filters off."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    seed: int | None = None
    num_return_sequences: int = 1

    def __post_init__(self) -> None:
        checks = (
            ("temperature", self.temperature >= 0, "at least 0 (0 means greedy)"),
            ("top-p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top-k", self.top_k >= 0, "at least 0 (0 means off)"),
            ("min-p", 0 <= self.min_p <= 1, "in [0, 1] (0 means off)"),
            ("repetition-penalty", self.repetition_penalty > 0, "above 0 (1 means off)"),
            ("max-new-tokens", self.max_new_tokens >= 1, "at least 1"),
            ("num-return-sequences", self.num_return_sequences >= 1, "at least 1"),
        )
        for name, ok, expected in checks:
            if not ok:
                value = getattr(self, name.replace("-", "_"))
                raise AffectReasonError(f"--{name} must be {expected}, got {value}")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def record(self) -> dict[str, Any]:
        """Every decoding parameter, as recorded in predictions and results."""
        return {"greedy": self.greedy, **asdict(self)}

    def updated(self, settings: dict[str, Any], where: str = "generation_kwargs") -> SamplingParams:
        """These params with `settings` applied (a suite's `generation_kwargs`, lmms-eval style names accepted)."""
        known = {f.name for f in fields(self)}
        values = dict(settings)
        if "max_tokens" in values:
            values["max_new_tokens"] = values.pop("max_tokens")
        do_sample = values.pop("do_sample", None)
        if values.pop("num_beams", 1) != 1:
            raise AffectReasonError(f"{where}: beam search is not supported (num_beams must be 1)")
        for key in values:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise AffectReasonError(f"{where}: unknown decoding setting '{key}'{hint}")
        if do_sample is False:
            values["temperature"] = 0.0
        result = replace(self, **values)
        if do_sample is True and result.greedy:
            raise AffectReasonError(f"{where}: do_sample true needs a temperature above 0")
        return result


def hf_generation_config(
    sampling: SamplingParams,
    checkpoint: GenerationConfig | None = None,
    suppress_tokens: list[int] | None = None,
) -> GenerationConfig:
    """An explicit `transformers.GenerationConfig`: every knob `generate` would otherwise fill in from the
    checkpoint is set here; only the special token ids come from `checkpoint`."""
    from transformers import GenerationConfig

    values: dict[str, Any] = dict(GenerationConfig._get_default_generation_params())
    # max_new_tokens takes precedence over these; setting both makes generate warn on every call
    del values["max_length"], values["min_length"]
    values.update(
        max_new_tokens=sampling.max_new_tokens,
        num_return_sequences=sampling.num_return_sequences,
        do_sample=not sampling.greedy,
        repetition_penalty=sampling.repetition_penalty,
        suppress_tokens=suppress_tokens or None,
    )
    if not sampling.greedy:  # greedy search applies no sampling filter: the library defaults stay
        values.update(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
        )
    if checkpoint is not None:
        values.update({k: getattr(checkpoint, k) for k in _CHECKPOINT_TOKEN_FIELDS})
        if checkpoint.min_new_tokens:  # a forced minimum length would change the output too
            values["min_new_tokens"] = 0
    return GenerationConfig(**values)


def vllm_sampling_kwargs(sampling: SamplingParams) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams` (greedy is temperature 0 with every filter off)."""
    greedy = sampling.greedy
    kwargs: dict[str, Any] = {
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "top_k": -1 if greedy or sampling.top_k == 0 else sampling.top_k,
        "min_p": 0.0 if greedy else sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "max_tokens": sampling.max_new_tokens,
        "n": sampling.num_return_sequences,
    }
    if sampling.seed is not None:
        kwargs["seed"] = sampling.seed
    return kwargs


def openai_request_kwargs(sampling: SamplingParams) -> tuple[dict[str, Any], dict[str, Any]]:
    """Chat-completions arguments and the extra body fields (vLLM's names) for an OpenAI-compatible server.

    The knobs outside the OpenAI API go in the extra body only when they are switched on, so a server that
    knows only the OpenAI fields still accepts a request that does not use them.
    """
    greedy = sampling.greedy
    kwargs: dict[str, Any] = {
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "n": sampling.num_return_sequences,
    }
    if sampling.seed is not None:
        kwargs["seed"] = sampling.seed
    extra: dict[str, Any] = {}
    if not greedy and sampling.top_k:
        extra["top_k"] = sampling.top_k
    if not greedy and sampling.min_p:
        extra["min_p"] = sampling.min_p
    if sampling.repetition_penalty != 1.0:
        extra["repetition_penalty"] = sampling.repetition_penalty
    return kwargs, extra
