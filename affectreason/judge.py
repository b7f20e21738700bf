"""An optional LLM judge behind any OpenAI-compatible endpoint (temperature 0, text only) for the benchmarks whose
official scores are judged: MME-Emotion's step extraction and step ratings, EmoBench-M's laughter-reasoning
ratings. The raw replies are stored in each prediction record under `judge`; `metrics.judged` scores them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.prompts import load_prompt

# Long enough for a rating of a dozen steps; the replies are short by design.
MAX_TOKENS = 512


@dataclass(frozen=True)
class JudgeOptions:
    """Where the judge is served. `model` defaults to the endpoint's first model."""

    endpoint: str
    model: str | None = None
    api_key: str | None = None
    max_tokens: int = MAX_TOKENS

    def manifest(self, model: str | None = None) -> dict[str, Any]:
        """What a run records about its judge (and what must agree to resume or merge): never the key."""
        return {
            "endpoint": self.endpoint.rstrip("/"),
            "model": model or self.model,
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }


class Judge:
    """A chat client that asks one text prompt at a time at temperature 0 and returns the reply text."""

    def __init__(self, options: JudgeOptions, timeout: float = 120.0, max_retries: int = 3) -> None:
        from openai import OpenAI

        self.options = options
        key = options.api_key or os.environ.get("AFFECTREASON_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.client = OpenAI(
            base_url=options.endpoint.rstrip("/"),
            api_key=key or "none",
            timeout=timeout,
            max_retries=max_retries,
        )
        models = self._call(lambda: [m.id for m in self.client.models.list()])  # reachable before any work
        if not models:
            raise AffectReasonError(f"judge endpoint {options.endpoint} serves no models")
        self.model = options.model or models[0]

    def _call(self, fn: Callable[[], Any]) -> Any:
        import openai

        try:
            return fn()
        except openai.APIStatusError as exc:
            raise AffectReasonError(f"judge endpoint answered {exc.status_code}") from None
        except openai.APIError as exc:
            cause = " ".join(str(exc.__cause__ or exc).split())
            raise AffectReasonError(f"cannot reach the judge at {self.options.endpoint}: {cause}") from None

    def ask(self, prompt: str) -> str:
        """The judge's reply to one user message."""
        response = self._call(
            lambda: self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0.0,
                max_tokens=self.options.max_tokens,
            )
        )
        return response.choices[0].message.content or ""


def judge_mme(judge: Judge, record: dict[str, Any]) -> dict[str, Any]:
    """MME-Emotion: the judge first splits the answer into steps, then rates each step 0/1 against the audio
    clue and the label (the last step is the recognition)."""
    ref = record["reference"]
    steps = judge.ask(load_prompt("judge_mme_steps").fill({"response": record.get("raw") or ""}).text)
    values = {"audio_clue": ref.get("clue") or "", "label": ref["label"], "steps": steps}
    return {"steps": steps, "score": judge.ask(load_prompt("judge_mme_score").fill(values).text)}


_LAUGHTER = {
    "logical": (
        "Logical Judgment Dimension",
        "Judge the logical clarity of the generated reason, the soundness of its causal chain and its coherence "
        "with the context, taking the reference reason as the benchmark.",
    ),
    "multimodal": (
        "Multimodal Content Association Dimension",
        "Judge whether the generated reason reflects how the language, visual and audio content interact, and "
        "whether that content agrees with what triggered the laughter, taking the reference reason as the "
        "benchmark.",
    ),
}


def judge_laughter(judge: Judge, record: dict[str, Any]) -> dict[str, Any]:
    """EmoBench-M laughter reasoning: one 1-5 rating per dimension of the reason against the reference."""
    prompt = load_prompt("judge_laughter")
    reason = record.get("reasoning") or record.get("raw") or ""
    out = {}
    for key, (dimension, criterion) in _LAUGHTER.items():
        values = {
            "dimension": dimension,
            "criterion": criterion,
            "reference": record["reference"]["description"],
            "response": reason,
        }
        out[key] = judge.ask(prompt.fill(values).text)
    return out


JUDGES: dict[str, Callable[[Judge, dict[str, Any]], dict[str, Any]]] = {
    "mme_cot": judge_mme,
    "laughter": judge_laughter,
}


def judge_records(records: list[dict[str, Any]], kinds: dict[str, str | None], judge: Judge) -> None:
    """Add the judge's raw replies (`record["judge"]`) to the records of datasets that have a judge kind. A
    record without an answer (decode error) is not sent; a failed call is kept as `judge.error`."""
    for record in records:
        kind = kinds.get(record["dataset"])
        if kind is None or record.get("error"):
            continue
        try:
            record["judge"] = {"model": judge.model, **JUDGES[kind](judge, record)}
        except AffectReasonError as exc:
            record["judge"] = {"model": judge.model, "error": str(exc)}
