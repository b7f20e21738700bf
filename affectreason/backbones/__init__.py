"""Backbones: everything specific to a model family, behind one interface, chosen by the config's model_type."""
