"""mpc layer (see docs/architecture.md)."""
