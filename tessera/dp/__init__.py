"""dp layer (see docs/architecture.md)."""
