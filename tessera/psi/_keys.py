"""Per-job PSI keys, and detection of keys used in more than one job.

A party's PSI key is a secret scalar ``k`` drawn fresh from libsodium's CSPRNG for every job.
Reusing ``k`` across jobs would let anyone holding two jobs' transcripts link encodings across
them (with the same salt) and weakens the one-more-DH argument the protocol rests on, so:

* a :class:`PsiKey` object is single use: a second job with it raises :class:`SessionError`;
* every party announces its public key ``k * G`` in the job's hello. Parties check that the
  job's public keys are distinct, and, given a :class:`KeyLog` (the node keeps one per
  deployment), that none was seen in an earlier job; a reused key aborts the job before any
  identifier is hashed.
* a step a party performs on *another* party's list with a key other than the one it announced
  is caught by probe points hidden in that list (``_two.py``, ``_three.py``): a party that uses
  a wrong key on a fraction ``f`` of the list escapes with probability ``(1 - f)^probes``
  (16 probes by default: a wholly wrong key is always caught). A party's *own* list under a
  different key cannot be checked without zero-knowledge proofs; its effect is that of the
  party changing its input set, which no PSI can prevent.

Publishing ``k * G`` reveals nothing about ``k * H(x)`` for any ``x``: telling whether
``(G, kG, H(x), Y)`` is a Diffie–Hellman tuple is the DDH problem in a prime-order group.
"""

from __future__ import annotations

import threading
from typing import Protocol

from tessera.errors import SessionError
from tessera.ot.groups import Group, get_group

__all__ = ["PsiKey", "KeyLog", "MemoryKeyLog"]


class PsiKey:
    """A party's secret scalar for one PSI job. Use :meth:`fresh`; single use."""

    __slots__ = ("group", "_scalar", "_used", "_lock")

    def __init__(self, group: Group, scalar: bytes) -> None:
        self.group = group
        self._scalar = scalar
        self._used = False
        self._lock = threading.Lock()

    @classmethod
    def fresh(cls, group: str | Group = "ristretto255") -> PsiKey:
        """A new key with a uniformly random non-zero scalar from libsodium's CSPRNG."""
        g = get_group(group) if isinstance(group, str) else group
        return cls(g, g.random_scalar())

    def __repr__(self) -> str:  # the scalar is secret
        return f"PsiKey(group={self.group.name!r}, used={self._used})"

    def public_key(self) -> bytes:
        """``k * G``: announced to the peers to detect reuse and to check probe replies."""
        return self.group.base_mul(self._scalar)

    def take(self) -> bytes:
        """The scalar, for the one job that uses this key; :class:`SessionError` the second time."""
        with self._lock:
            if self._used:
                raise SessionError("this PsiKey was already used in a PSI job; draw PsiKey.fresh() for every job")
            self._used = True
        return self._scalar


class KeyLog(Protocol):
    """Public keys seen in earlier PSI jobs (persisted by the node; in memory for tests)."""

    def seen(self, public_key: bytes) -> bool:
        """Whether ``public_key`` appeared in an earlier job."""
        ...

    def record(self, public_key: bytes) -> None:
        """Remember ``public_key`` as used."""
        ...


class MemoryKeyLog:
    """A :class:`KeyLog` in memory, safe to share between threads."""

    def __init__(self) -> None:
        self._keys: set[bytes] = set()
        self._lock = threading.Lock()

    def seen(self, public_key: bytes) -> bool:
        with self._lock:
            return bytes(public_key) in self._keys

    def record(self, public_key: bytes) -> None:
        with self._lock:
            self._keys.add(bytes(public_key))
