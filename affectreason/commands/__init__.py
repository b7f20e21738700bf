"""CLI command modules; each exposes `register(app)` and keeps heavy imports inside its commands."""
