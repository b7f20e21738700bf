"""The reference's LLM label extraction (OV-MER's prompt) through any OpenAI-compatible endpoint, at temperature 0:
an optional `Extractor` for `score` that labels free-text predictions. An HTTP client, so outside the light layer."""

from __future__ import annotations

from affectreason.errors import AffectReasonError
from affectreason.scoring import Extractor
from affectreason.taxonomy.lexicon import split_labels

_LLM_PROMPT = (
    "Please assume the role of an expert in the field of emotions. We provide clues that may be related to the "
    "emotions of the character. Based on the provided clues, please identify the emotional states of the main "
    "character. Please separate different emotional categories with commas and output only the clearly "
    "identifiable emotional categories in a list format. If none are identified, please output an empty list.\n"
    "Input: {text}\nOutput:"
)


def extract_labels_llm(
    text: str, model: str, base_url: str, api_key: str = "EMPTY", timeout: float = 60.0
) -> list[str]:
    """The reference's extraction step through an OpenAI-compatible endpoint, made deterministic (temperature 0)."""
    from openai import OpenAI, OpenAIError

    client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout)
    try:
        reply = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": _LLM_PROMPT.format(text=text)}],
            temperature=0.0,
            max_tokens=128,
        )
    except OpenAIError as exc:
        raise AffectReasonError(f"label extractor at {base_url} failed: {exc}".splitlines()[0]) from None
    return split_labels(reply.choices[0].message.content or "")


def llm_extractor(endpoint: str, model: str | None = None, api_key: str | None = None) -> Extractor:
    """The reference's LLM label extraction through any OpenAI-compatible endpoint, at temperature 0."""
    if model is None:
        from openai import OpenAI, OpenAIError

        try:
            model = OpenAI(base_url=endpoint, api_key=api_key or "EMPTY").models.list().data[0].id
        except (OpenAIError, IndexError) as exc:
            raise AffectReasonError(f"cannot list the models at {endpoint}: {exc}".splitlines()[0]) from None
    return lambda text: extract_labels_llm(text, model, endpoint, api_key=api_key or "EMPTY")
