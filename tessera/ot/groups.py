"""Prime-order groups for ECDH PSI, with batched operations that use every core.

Two groups of prime order L = 2^252 + 27742317777372353535851937790883648493:

``ristretto255`` (preferred)
    libsodium's ristretto255 (RFC 9496) through ``ctypes``. PyNaCl does not expose ristretto255
    (checked: PyNaCl 1.6.2), so the shared libsodium >= 1.0.18 of the system is loaded lazily on
    first use. ``ctypes`` releases the GIL for the length of each C call, so a thread pool scales
    over the cores (measured: 1.9x on 2 cores; cffi's ABI mode did not scale).
``edwards25519``
    The prime-order subgroup of edwards25519 through PyNaCl's bundled libsodium; always
    available, about half as fast because libsodium checks subgroup membership (a second scalar
    multiplication) on every point it multiplies.

Both reject, with the index of the first bad point, encodings that are not canonical, points
outside the prime-order group, and products equal to the identity. Encodings are canonical, so
two points are equal exactly when their 32-byte encodings are.
"""

from __future__ import annotations

import abc
import ctypes
import ctypes.util
import functools
import hashlib
import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils
import numpy as np

from tessera.errors import SessionError

__all__ = [
    "Group", "GROUPS", "get_group", "ristretto255_available", "default_workers", "BadPoints", "Engine",
    "POINT_BYTES", "SCALAR_BYTES",
]

POINT_BYTES = 32
SCALAR_BYTES = 32
T = TypeVar("T")
R = TypeVar("R")


class BadPoints(Exception):
    """Internal: some input points were invalid (the caller names the peer they came from)."""

    def __init__(self, count: int, first: int) -> None:
        super().__init__(f"{count} invalid point(s), the first at index {first}")
        self.count = count
        self.first = first


class Group(abc.ABC):
    """A prime-order group with 32-byte canonical encodings and 32-byte scalars."""

    name: str

    @abc.abstractmethod
    def random_scalar(self) -> bytes:
        """A uniformly random non-zero scalar from libsodium's CSPRNG."""

    @abc.abstractmethod
    def base_mul(self, scalar: bytes) -> bytes:
        """``scalar * G`` for the group's fixed generator ``G``."""

    @abc.abstractmethod
    def mul_range(self, scalar: bytes, src: np.ndarray, dst: np.ndarray, lo: int, hi: int) -> list[int]:
        """``dst[i] = scalar * src[i]`` for points ``lo <= i < hi``; returns the invalid indices.

        ``src`` and ``dst`` are flat uint8 arrays of 32-byte encodings. Runs in a worker thread.
        """

    @abc.abstractmethod
    def hash_range(self, prefix: bytes, keys: Sequence[bytes], dst: np.ndarray, lo: int, hi: int) -> None:
        """``dst[i] = from_hash(SHA-512(prefix || keys[i]))`` for ``lo <= i < hi``."""

    @abc.abstractmethod
    def add(self, p: bytes, q: bytes) -> bytes:
        """``p + q`` for two valid points (ValueError for an invalid encoding)."""

    @abc.abstractmethod
    def sub(self, p: bytes, q: bytes) -> bytes:
        """``p - q`` for two valid points (ValueError for an invalid encoding)."""

    def mul(self, scalar: bytes, point: bytes) -> bytes:
        """``scalar * point`` for one point; :class:`BadPoints` if it is invalid."""
        src = np.frombuffer(point, dtype=np.uint8)
        dst = np.empty(POINT_BYTES, dtype=np.uint8)
        if len(src) != POINT_BYTES or self.mul_range(scalar, src, dst, 0, 1):
            raise BadPoints(1, 0)
        return dst.tobytes()


# --- ristretto255 via the system libsodium -------------------------------------------------------

_LIBSODIUM_NAMES = ("libsodium.so.26", "libsodium.so.23", "libsodium.dylib")


@functools.cache
def _libsodium() -> ctypes.CDLL | None:
    """The system libsodium with ristretto255 (>= 1.0.18), loaded on first use; None if absent."""
    names = list(_LIBSODIUM_NAMES)
    found = ctypes.util.find_library("sodium")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if not hasattr(lib, "crypto_core_ristretto255_from_hash") or lib.sodium_init() < 0:
            continue
        vp = ctypes.c_void_p
        for fn, args in [
            ("crypto_scalarmult_ristretto255", [vp, vp, vp]),
            ("crypto_scalarmult_ristretto255_base", [vp, vp]),
            ("crypto_core_ristretto255_from_hash", [vp, vp]),
            ("crypto_core_ristretto255_scalar_random", [vp]),
        ]:
            getattr(lib, fn).argtypes = args
            getattr(lib, fn).restype = ctypes.c_int if fn != "crypto_core_ristretto255_scalar_random" else None
        return lib
    return None


def ristretto255_available() -> bool:
    """Whether a libsodium with ristretto255 can be loaded on this machine."""
    return _libsodium() is not None


class Ristretto255(Group):
    """ristretto255 (RFC 9496) from the system libsodium."""

    name = "ristretto255"

    def __init__(self) -> None:
        lib = _libsodium()
        if lib is None:
            raise SessionError(
                "PSI group 'ristretto255' needs the libsodium shared library (>= 1.0.18), which was "
                "not found; install it (e.g. apt install libsodium23) or have every party choose "
                "group='edwards25519'"
            )
        self._lib = lib

    def random_scalar(self) -> bytes:
        buf = ctypes.create_string_buffer(SCALAR_BYTES)
        self._lib.crypto_core_ristretto255_scalar_random(buf)  # uniform in [1, L)
        return buf.raw

    def base_mul(self, scalar: bytes) -> bytes:
        out = ctypes.create_string_buffer(POINT_BYTES)
        if self._lib.crypto_scalarmult_ristretto255_base(out, scalar) != 0:
            raise SessionError("a PSI scalar is zero; keys must come from PsiKey.fresh")
        return out.raw

    def mul_range(self, scalar: bytes, src: np.ndarray, dst: np.ndarray, lo: int, hi: int) -> list[int]:
        f = self._lib.crypto_scalarmult_ristretto255
        s = ctypes.c_char_p(scalar)
        ia, oa = src.ctypes.data, dst.ctypes.data
        bad = []
        for i in range(lo, hi):
            o = POINT_BYTES * i
            if f(oa + o, s, ia + o):
                bad.append(i)
        return bad

    def add(self, p: bytes, q: bytes) -> bytes:
        return self._point_op(self._lib.crypto_core_ristretto255_add, "addition", p, q)

    def sub(self, p: bytes, q: bytes) -> bytes:
        return self._point_op(self._lib.crypto_core_ristretto255_sub, "subtraction", p, q)

    @staticmethod
    def _point_op(f: Callable[..., int], what: str, p: bytes, q: bytes) -> bytes:
        out = ctypes.create_string_buffer(POINT_BYTES)
        if f(out, p, q) != 0:
            raise ValueError(f"ristretto255 {what} failed")
        return out.raw

    def hash_range(self, prefix: bytes, keys: Sequence[bytes], dst: np.ndarray, lo: int, hi: int) -> None:
        f = self._lib.crypto_core_ristretto255_from_hash
        base = hashlib.sha512(prefix)
        oa = dst.ctypes.data
        for i in range(lo, hi):
            h = base.copy()
            h.update(keys[i])
            f(oa + POINT_BYTES * i, h.digest())


# --- the prime-order subgroup of edwards25519 via PyNaCl -----------------------------------------


class Edwards25519(Group):
    """The prime-order subgroup of edwards25519 (PyNaCl's bundled libsodium)."""

    name = "edwards25519"

    def random_scalar(self) -> bytes:
        while True:
            s = sodium.crypto_core_ed25519_scalar_reduce(nacl.utils.random(64))
            if any(s):
                return s

    def base_mul(self, scalar: bytes) -> bytes:
        return sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)

    def mul_range(self, scalar: bytes, src: np.ndarray, dst: np.ndarray, lo: int, hi: int) -> list[int]:
        f = sodium.crypto_scalarmult_ed25519_noclamp  # checks canonical, subgroup, not identity
        raw = src.data.cast("B")
        bad = []
        for i in range(lo, hi):
            o = POINT_BYTES * i
            try:
                dst[o : o + POINT_BYTES] = np.frombuffer(f(scalar, bytes(raw[o : o + POINT_BYTES])), np.uint8)
            except nacl.exceptions.CryptoError:
                bad.append(i)
        return bad

    def add(self, p: bytes, q: bytes) -> bytes:
        return sodium.crypto_core_ed25519_add(p, q)

    def sub(self, p: bytes, q: bytes) -> bytes:
        return sodium.crypto_core_ed25519_sub(p, q)

    def hash_range(self, prefix: bytes, keys: Sequence[bytes], dst: np.ndarray, lo: int, hi: int) -> None:
        # Two Elligator 2 maps added (each cofactor-cleared by libsodium): the random-oracle
        # construction of RFC 9380, so the hash is uniform on the subgroup.
        base = hashlib.sha512(prefix)
        for i in range(lo, hi):
            h = base.copy()
            h.update(keys[i])
            d = h.digest()
            p = sodium.crypto_core_ed25519_add(
                sodium.crypto_core_ed25519_from_uniform(d[:32]), sodium.crypto_core_ed25519_from_uniform(d[32:])
            )
            o = POINT_BYTES * i
            dst[o : o + POINT_BYTES] = np.frombuffer(p, np.uint8)


GROUPS: dict[str, type[Group]] = {"ristretto255": Ristretto255, "edwards25519": Edwards25519}


def get_group(name: str) -> Group:
    """The group called ``name``; a clear error for an unknown or unavailable one."""
    try:
        cls = GROUPS[name]
    except KeyError:
        raise SessionError(f"unknown PSI group {name!r}; choose one of {sorted(GROUPS)}") from None
    return cls()


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Engine:
    """Batched group operations spread over a thread pool; counts scalar multiplications."""

    def __init__(self, group: Group, pool: ThreadPoolExecutor, workers: int) -> None:
        self.group = group
        self._pool = pool
        self._workers = workers
        self.scalar_mults = 0
        self.hashes = 0

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        k = max(1, min(n // 256, 4 * self._workers))
        edges = np.linspace(0, n, k + 1).astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]

    def mul(self, scalar: bytes, points: bytes | bytearray | memoryview) -> bytearray:
        """``scalar * p`` for every 32-byte point ``p`` of ``points``, in order.

        Raises :class:`BadPoints` if any input is not a valid encoding of a group element or any
        product is the identity.
        """
        src = np.frombuffer(points, dtype=np.uint8)
        if len(src) % POINT_BYTES:
            raise BadPoints(1, len(src) // POINT_BYTES)
        n = len(src) // POINT_BYTES
        out = bytearray(len(src))
        dst = np.frombuffer(out, dtype=np.uint8)
        futures = [self._pool.submit(self.group.mul_range, scalar, src, dst, a, b) for a, b in self._chunks(n)]
        bad = [i for f in futures for i in f.result()]
        self.scalar_mults += n
        if bad:
            raise BadPoints(len(bad), min(bad))
        return out

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(x) for x in items]``, run on the pool's threads (numpy and AES release the GIL)."""
        if self._workers <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        return [f.result() for f in [self._pool.submit(fn, x) for x in items]]

    @property
    def workers(self) -> int:
        return self._workers

    def mul_one(self, scalar: bytes, point: bytes) -> bytes:
        self.scalar_mults += 1
        return self.group.mul(scalar, point)

    def base_mul(self, scalar: bytes) -> bytes:
        self.scalar_mults += 1
        return self.group.base_mul(scalar)

    def hash_to_group(self, prefix: bytes, keys: Sequence[bytes]) -> bytearray:
        """``from_hash(SHA-512(prefix || k))`` for every key ``k``, as concatenated encodings."""
        out = bytearray(POINT_BYTES * len(keys))
        dst = np.frombuffer(out, dtype=np.uint8)
        chunks = self._chunks(len(keys))
        futures = [self._pool.submit(self.group.hash_range, prefix, keys, dst, a, b) for a, b in chunks]
        for f in futures:
            f.result()
        self.hashes += len(keys)
        return out
