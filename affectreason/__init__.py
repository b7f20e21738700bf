"""affectreason: explainable multimodal emotion reasoning with multimodal LLMs."""

from affectreason.errors import AffectReasonError

__version__ = "0.1.0"

__all__ = ["AffectReasonError", "__version__"]
