"""psi layer (see docs/architecture.md)."""
