"""Shared pytest fixtures: media files made with PyAV and tiny random backbones built like `tiny-model`."""

pytest_plugins = ["fixtures_media", "fixtures_models", "fixtures_runs"]
