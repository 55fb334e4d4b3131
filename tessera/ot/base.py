"""Base oblivious transfers: Chou–Orlandi "simplest OT" in a prime-order group (``groups.py``).

**Base OTs** (Chou–Orlandi 2015, "The simplest protocol for oblivious transfer", in the
prime-order group of ``groups.py``; semi-honest use). The OT sender draws ``a`` and sends
``A = aG``. For OT ``i`` the receiver with choice bit ``c_i`` draws ``b_i`` and sends
``B_i = b_i G + c_i A``. The sender's keys are ``k_i^0 = H(i, A, B_i, a B_i)`` and
``k_i^1 = H(i, A, B_i, a (B_i - A))``; the receiver's is ``H(i, A, B_i, b_i A) = k_i^{c_i}``.
``B_i`` is uniform whatever ``c_i`` (it hides the choice perfectly); the other key needs
``ab_i G`` from ``aG`` and ``b_i G``, i.e. CDH. ``H`` is SHA-256 with the job's salt and a
domain tag, truncated to a 16-byte PRG seed. Invalid points and the identity are refused (the
group's checks).
"""

from __future__ import annotations

import hashlib

import numpy as np

from tessera.ot.groups import POINT_BYTES, Engine

__all__ = ["WIDTH", "SEED_BYTES", "BaseOtSender", "BaseOtReceiver"]

WIDTH = 512  # code width k: bits per row, number of base OTs
SEED_BYTES = 16



def _seed(salt: bytes, i: int, a_point: bytes, b_point: bytes, shared: bytes) -> bytes:
    h = hashlib.sha256(b"tessera/psi/oprf/v1/base-ot\x00" + salt)
    h.update(i.to_bytes(4, "little") + a_point + b_point + shared)
    return h.digest()[:SEED_BYTES]


class BaseOtSender:
    """The sender of ``count`` base OTs: first :attr:`message` (``A``), then :meth:`keys`."""

    def __init__(self, engine: Engine, salt: bytes, count: int = WIDTH) -> None:
        self._engine = engine
        self._salt = salt
        self.count = count
        self._a = engine.group.random_scalar()
        self.message = engine.base_mul(self._a)

    def keys(self, b_points: bytes | bytearray | memoryview) -> tuple[list[bytes], list[bytes]]:
        """The seed pairs ``(k^0, k^1)`` from the receiver's ``B_i`` (:class:`BadPoints` if invalid)."""
        group = self._engine.group
        ab = self._engine.mul(self._a, b_points)
        aa = self._engine.mul_one(self._a, self.message)
        a_pt, raw = self.message, bytes(b_points)
        k0, k1 = [], []
        for i in range(self.count):
            b_i, p = raw[POINT_BYTES * i : POINT_BYTES * (i + 1)], bytes(ab[POINT_BYTES * i : POINT_BYTES * (i + 1)])
            k0.append(_seed(self._salt, i, a_pt, b_i, p))
            k1.append(_seed(self._salt, i, a_pt, b_i, group.sub(p, aa)))
        return k0, k1


class BaseOtReceiver:
    """The receiver of base OTs with choice bits ``choices``: :meth:`message` then :meth:`keys`."""

    def __init__(self, engine: Engine, salt: bytes, choices: np.ndarray) -> None:
        self._engine = engine
        self._salt = salt
        self.choices = np.asarray(choices, dtype=np.uint8)
        self._b = [engine.group.random_scalar() for _ in range(len(self.choices))]
        self._a_point = b""
        self._b_points = b""

    def message(self, a_point: bytes) -> bytes:
        """``B_i = b_i G + c_i A`` for every OT, concatenated (:class:`BadPoints` if ``A`` is invalid)."""
        group = self._engine.group
        self._engine.mul_one(group.random_scalar(), a_point)  # validates A (not the identity)
        out = []
        for b, c in zip(self._b, self.choices):
            p = self._engine.base_mul(b)
            out.append(group.add(p, a_point) if c else p)
        self._a_point = a_point
        self._b_points = b"".join(out)
        return self._b_points

    def keys(self) -> list[bytes]:
        """The chosen seeds ``k_i^{c_i} = H(i, A, B_i, b_i A)``."""
        out = []
        for i, b in enumerate(self._b):
            shared = self._engine.mul_one(b, self._a_point)
            out.append(_seed(self._salt, i, self._a_point, self._b_points[POINT_BYTES * i : POINT_BYTES * (i + 1)], shared))
        return out
