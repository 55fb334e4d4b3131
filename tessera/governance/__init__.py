"""governance layer (see docs/architecture.md)."""
