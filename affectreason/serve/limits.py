"""What one request may ask of the in-process server (`Limits`) and how a request is refused (`ProtocolError`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError


class ProtocolError(AffectReasonError):
    """A request the server refuses: HTTP `status`, OpenAI error `kind`, optional offending `param`."""

    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None
    ):
        # client text echoed in a message may hold lone surrogates, NULs or newlines: keep the body one valid line
        safe = " ".join(message.encode("utf-8", "backslashreplace").decode("utf-8").split())
        super().__init__(safe.replace("\x00", "\\x00"))
        self.status, self.kind, self.param = status, kind, param

    def __reduce__(self) -> tuple[Any, ...]:  # raised in media worker processes, re-raised here
        return (type(self), (self.status, str(self), self.kind, self.param))

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.status}}


@dataclass
class Limits:
    """What one request may ask of the server."""

    max_request_bytes: int = 64 * 1024 * 1024
    max_frames: int = 64
    max_duration: float = 600.0
    max_new_tokens: int = 4096
    max_choices: int = 8
    max_text_chars: int = 256 * 1024  # prompt plus transcript, refused before any tokenising
    media_dir: Path | None = None  # local files (file:// URLs) are read only from inside this folder


def bad(message: str, param: str | None = None, status: int = 400) -> ProtocolError:
    """A 400 (or `status`) refusal naming the offending `param`."""
    return ProtocolError(status, message, param=param)
