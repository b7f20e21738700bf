"""The one exception type whose message is shown to users as a single `error:` line."""


class AffectReasonError(Exception):
    """A user-facing failure: bad input, missing weights, unreadable media. The message is one line."""


class MediaError(AffectReasonError):
    """A media file that cannot be decoded (missing, empty, truncated or not media)."""


class MediaTooLong(MediaError):
    """Media longer than the caller accepts, found from the container header before anything is decoded."""

    def __init__(self, message: str, duration: float) -> None:
        super().__init__(message)
        self.duration = duration

    def __reduce__(self) -> tuple:  # raised in media worker processes, re-raised in the server
        return (type(self), (str(self), self.duration))


class ModelLoadError(AffectReasonError):
    """A model or adapter that cannot be found or does not fit."""
