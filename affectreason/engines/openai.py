"""The `openai` engine: clips decoded locally, sent to any OpenAI-compatible server with the official client.

Works against `affectreason serve` (in process or `vllm serve`) and plain `vllm serve`. Each clip's frames
go as a video part and its audio as its own audio part (see `affectreason.engines.wire`); the official
client retries 408/409/429/5xx and connection errors with exponential backoff; a thread pool bounds the
number of requests in flight.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from affectreason.decoding import SamplingParams, openai_request_kwargs
from affectreason.engines.wire import EXTRA_FIELD, chat_body
from affectreason.errors import AffectReasonError
from affectreason.request import Request


def user_text(request: Request) -> str:
    """The text part: the transcript line (when the text modality is on) above the prompt.

    Same wording the in-process backbones use, so a remote model reads what a local one would.
    """
    transcript = request.clip.transcript
    if "text" in request.modalities and transcript:
        return f'Transcript: "{transcript.strip()}"\n{request.prompt}'
    return request.prompt


class OpenAIEngine:
    """Generate through an OpenAI-compatible `/v1/chat/completions` endpoint."""

    name = "openai"

    def __init__(
        self,
        endpoint: str,
        model: str | None = None,
        api_key: str | None = None,
        adapter: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
    ) -> None:
        from openai import OpenAI

        if concurrency < 1:
            raise AffectReasonError(f"concurrency must be at least 1, got {concurrency}")
        self.endpoint = endpoint.rstrip("/")
        self.concurrency = concurrency
        # A local server started without --api-key accepts anything; the client insists on some key.
        key = api_key or os.environ.get("AFFECTREASON_API_KEY") or os.environ.get("OPENAI_API_KEY") or "none"
        self.client = OpenAI(base_url=self.endpoint, api_key=key, timeout=timeout, max_retries=max_retries)
        # With an adapter (a served LoRA name) the requests go to it; `model_id` stays the base model's name.
        self.adapter = adapter
        self.model_id = model or self._first_model()

    def _first_model(self) -> str:
        models = self._call(lambda: list(self.client.models.list()))
        if not models:
            raise AffectReasonError(f"{self.endpoint} serves no models")
        return models[0].id

    def _call(self, fn: Any) -> Any:
        """Run one client call, turning transport and HTTP failures into one-line user errors."""
        import openai

        try:
            return fn()
        except openai.APIStatusError as exc:
            raise AffectReasonError(f"{self.endpoint} answered {exc.status_code}: {_message(exc)}") from None
        except openai.APITimeoutError:
            raise AffectReasonError(f"{self.endpoint} did not answer in time") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise AffectReasonError(f"cannot reach {self.endpoint}: {' '.join(str(cause).split())}") from None

    def _one(self, request: Request, sampling: SamplingParams) -> list[str]:
        messages, options = chat_body(request, user_text(request))
        params, extra = openai_request_kwargs(sampling)
        kwargs: dict[str, Any] = {
            "model": request.adapter or self.adapter or self.model_id,
            "messages": messages,
            **params,
            "extra_body": {**extra, EXTRA_FIELD: options},
        }
        response = self._call(lambda: self.client.chat.completions.create(**kwargs))
        choices = sorted(response.choices, key=lambda c: c.index)
        if len(choices) != sampling.num_return_sequences:
            raise AffectReasonError(
                f"{self.endpoint} returned {len(choices)} choices, expected {sampling.num_return_sequences}"
            )
        return [c.message.content or "" for c in choices]

    def generate(self, requests: list[Request], sampling: SamplingParams) -> list[str]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            results = list(pool.map(lambda r: self._one(r, sampling), requests))
        return [text for texts in results for text in texts]


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return " ".join(str(error["message"]).split())
        if isinstance(body.get("detail"), str):
            return body["detail"]
    return " ".join(str(getattr(exc, "message", exc)).split())
