"""sharing layer (see docs/architecture.md)."""
