"""Backbones: everything specific to a model family, behind one interface, chosen by the config's model_type."""

from affectreason.backbones.base import DEFAULT_MODEL, Backbone, backbone_class_for
from affectreason.backbones.loading import load_backbone

__all__ = ["DEFAULT_MODEL", "Backbone", "backbone_class_for", "load_backbone"]
