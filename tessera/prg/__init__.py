"""Cryptographically secure pseudo-random generation (AES-CTR)."""

from tessera.prg.aes import PRG, fresh_seed

__all__ = ["PRG", "fresh_seed"]
