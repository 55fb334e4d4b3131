"""ring layer (see docs/architecture.md)."""
