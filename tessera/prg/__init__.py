"""prg layer (see docs/architecture.md)."""
