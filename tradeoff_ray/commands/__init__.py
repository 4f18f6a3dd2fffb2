"""One module per CLI command; each exposes `main(**options) -> int | None`."""
