"""net layer (see docs/architecture.md)."""
