"""The one exception type whose message is shown to users as a single `error:` line."""


class AffectReasonError(Exception):
    """A user-facing failure: bad input, missing weights, unreadable media. The message is one line."""


class MediaError(AffectReasonError):
    """A media file that cannot be decoded (missing, empty, truncated or not media)."""


class ModelLoadError(AffectReasonError):
    """A model or adapter that cannot be found or does not fit."""
