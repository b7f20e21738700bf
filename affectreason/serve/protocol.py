"""The OpenAI chat-completions subset the in-process server speaks: request validation and response bodies.

Pure functions apart from decoding media with `load_clip`; every bad request raises `ProtocolError` with
the HTTP status and a one-line message, which the app turns into an OpenAI-style JSON error body.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from affectreason.decoding import SamplingParams
from affectreason.engines.hf import Completion
from affectreason.engines.wire import EXTRA_FIELD
from affectreason.prompts import Prompt
from affectreason.rationale import FORMAT_VERSION, parse_rationale
from affectreason.request import ALL_MODALITIES, Request
from affectreason.serve.limits import Limits, ProtocolError, bad
from affectreason.serve.media import decode_clip

_OPTION_KEYS = {"frames", "fps", "max_frames", "segment", "modalities", "transcript"}
_MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class ChatCall:
    """A validated chat request: the engine request, its sampling, the served name and stream flag."""

    model: str
    request: Request
    sampling: SamplingParams
    stream: bool = False
    prompt_version: str | None = None
    clip_info: dict[str, Any] = field(default_factory=dict)
    max_tokens_given: bool = False
    include_usage: bool = False


def _is_number(value: Any) -> bool:
    """A finite JSON number (booleans are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_json(value: Any) -> None:
    """Refuse bodies nested deeper than `_MAX_DEPTH` or holding lone surrogates (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise bad(f"the request body is nested deeper than {_MAX_DEPTH} levels")
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise bad("the request body holds a lone surrogate: strings must be valid Unicode")
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if not _is_number(value) or not low <= value <= high:
        raise bad(f"'{key}' must be a number between {low:g} and {high:g}", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(f"'{key}' must be an integer between {low} and {high}", key)
    return value


def _text(content: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A message's text and its media parts."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise bad(f"{where}.content must be a string or a list of content parts", where)
    texts, media = [], []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        kind = kind if isinstance(kind, str) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise bad(f"{where}.content[{i}].text must be a string", where)
            texts.append(part["text"])
        elif kind in {"video_url", "audio_url", "input_audio"}:
            media.append(part)
        else:
            raise bad(
                f"{where}.content[{i}] has unsupported type {kind!r}: use text, video_url, audio_url or input_audio",
                where,
            )
    return "\n".join(texts), media


def _options(body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    options = body.get(EXTRA_FIELD) or {}
    if not isinstance(options, dict):
        raise bad(f"'{EXTRA_FIELD}' must be an object", EXTRA_FIELD)
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise bad(
            f"unknown {EXTRA_FIELD} option(s) {', '.join(unknown)}: known are {', '.join(sorted(_OPTION_KEYS))}"
        )
    frames = _integer(options, "frames", 16, 1, limits.max_frames)
    max_frames = _integer(options, "max_frames", limits.max_frames, 1, limits.max_frames)
    fps = _number(options, "fps", 0.0, 0.0, 60.0) or None
    segment = options.get("segment")
    if segment is not None:
        ok = isinstance(segment, list) and len(segment) == 2 and all(_is_number(v) for v in segment)
        if not ok or not 0 <= segment[0] < segment[1]:
            raise bad(f"{EXTRA_FIELD}.segment must be [start, end] seconds with start < end", "segment")
    modalities = options.get("modalities", sorted(ALL_MODALITIES))
    if not isinstance(modalities, list) or not all(
        isinstance(m, str) and m in ALL_MODALITIES for m in modalities
    ):
        raise bad(f"{EXTRA_FIELD}.modalities must be a list drawn from video, audio, text", "modalities")
    transcript = options.get("transcript")
    if transcript is not None and not isinstance(transcript, str):
        raise bad(f"{EXTRA_FIELD}.transcript must be a string", "transcript")
    return {
        "frames": frames,
        "fps": fps,
        "max_frames": max_frames,
        "segment": segment,
        "modalities": frozenset(modalities),
        "transcript": transcript,
    }


def _messages(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The prompt (system text above the last user message's text) and that message's media parts."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty list", "messages")
    system, user = [], None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        role = role if isinstance(role, str) else None
        if role in {"system", "developer"}:
            text, media = _text(message.get("content"), f"messages[{i}]")
            if media:
                raise bad(
                    f"messages[{i}]: media belongs in the user message, not the {role} message", "messages"
                )
            system.append(text)
        elif role == "user":
            if user is not None:
                raise bad("multi-turn chats are not supported: send one user message per clip", "messages")
            user = (i, message)
        elif role == "assistant":
            raise bad("multi-turn chats are not supported: send one user message per clip", "messages")
        else:
            raise bad(f"messages[{i}].role must be system, user or assistant", "messages")
    if user is None:
        raise bad("'messages' needs a user message", "messages")
    text, media = _text(user[1].get("content"), f"messages[{user[0]}]")
    return "\n\n".join([*system, text]).strip(), media


def _served_model(body: dict[str, Any], served: dict[str, str | None]) -> str:
    """The requested model name, which must be one this server serves (else a 404)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' must be a non-empty string", "model")
    if model not in served:
        raise ProtocolError(
            404,
            f"model {model[:64]!r} is not served here: choose one of {', '.join(served)}",
            "not_found_error",
            "model",
        )
    return model


def _sampling(body: dict[str, Any], max_tokens: Any, limits: Limits) -> SamplingParams:
    """The request's decoding parameters, each checked against its range (and the server's limits)."""
    return SamplingParams(
        temperature=_number(body, "temperature", 0.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1.0,
        top_k=max(0, _integer(body, "top_k", 0, -1, 2**31 - 1) or 0),  # vLLM's extra fields; -1 is off there
        min_p=_number(body, "min_p", 0.0, 0.0, 1.0),
        repetition_penalty=_number(body, "repetition_penalty", 1.0, 0.01, 10.0),
        max_new_tokens=_integer({"max_tokens": max_tokens}, "max_tokens", 512, 1, limits.max_new_tokens),
        seed=_integer(body, "seed", None, -(2**63), 2**63 - 1),
        num_return_sequences=_integer(body, "n", 1, 1, limits.max_choices),
    )


def parse_chat(body: Any, served: dict[str, str | None], limits: Limits, default_prompt: Prompt) -> ChatCall:
    """Validate a chat-completions body and decode its clip. `served` maps model names to adapter names;
    a request without text gets `default_prompt`."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    model = _served_model(body, served)
    options = _options(body, limits)
    prompt, media_parts = _messages(body)
    text_chars = len(prompt) + len(options["transcript"] or "")
    if text_chars > limits.max_text_chars:
        raise ProtocolError(
            413,
            f"the prompt and transcript hold {text_chars} characters; this server accepts at most {limits.max_text_chars}",
            param="messages",
        )
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    sampling = _sampling(body, max_tokens, limits)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("'stream' must be true or false", "stream")
    clip = decode_clip(media_parts, options, limits)
    request = Request(
        clip=clip,
        prompt=prompt or default_prompt.text,
        modalities=options["modalities"],
        adapter=served[model],
    )
    info = {
        "frames": int(len(clip.frames)) if clip.has_video else 0,
        "duration": round(float(clip.duration), 3),
        "audio_seconds": round(len(clip.audio) / clip.sample_rate, 3) if clip.has_audio else 0.0,
    }
    version = None if prompt else default_prompt.id
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    return ChatCall(
        model,
        request,
        sampling,
        stream,
        prompt_version=version,
        clip_info=info,
        max_tokens_given=max_tokens is not None,
        include_usage=stream_options.get("include_usage") is True,
    )


def usage(completions: list[Completion]) -> dict[str, int]:
    """OpenAI `usage`: the prompt counted once, every returned sequence's tokens."""
    prompt = completions[0].prompt_tokens if completions else 0
    generated = sum(c.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def completion_body(call: ChatCall, completions: list[Completion]) -> dict[str, Any]:
    """The chat.completion response: the model text as content, the parsed rationale in `affectreason`."""
    texts = [c.text for c in completions]
    rationales = [parse_rationale(t).to_dict() for t in texts]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
                "logprobs": None,
            }
            for i, c in enumerate(completions)
        ],
        "usage": usage(completions),
        EXTRA_FIELD: {
            "format_version": FORMAT_VERSION,
            "prompt_version": call.prompt_version,
            "rationale": rationales[0] if rationales else None,
            "rationales": rationales,
            "clip": call.clip_info,
        },
    }


def stream_chunks(body: dict[str, Any], include_usage: bool = False) -> list[dict[str, Any]]:
    """A finished completion as `chat.completion.chunk` events: role and content per choice, then a stop."""
    base = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body["created"],
        "model": body["model"],
    }
    chunks = []
    for choice in body["choices"]:
        delta = {"role": "assistant", "content": choice["message"]["content"]}
        chunks.append(
            {**base, "choices": [{"index": choice["index"], "delta": delta, "finish_reason": None}]}
        )
    for choice in body["choices"]:
        end = {"index": choice["index"], "delta": {}, "finish_reason": choice["finish_reason"]}
        chunks.append({**base, "choices": [end]})
    chunks[-1][EXTRA_FIELD] = body[EXTRA_FIELD]
    if include_usage:  # as OpenAI does: one last chunk without choices
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks
