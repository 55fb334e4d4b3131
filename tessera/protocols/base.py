"""The interface every MPC protocol implements, over share arrays of ring elements.

A *share array* has shape ``(components, *shape)``: one component for additive sharing, two for
replicated sharing. Linear operations (add, subtract, multiply by a public integer, index,
reshape, sum) act on share arrays directly and need no protocol; everything else goes through
the methods below. Values are ring elements (uint64); fixed-point scaling is the caller's
business except for :meth:`Protocol.truncate` and the ``trunc`` argument of products, which
divide by ``2^bits`` exactly up to one unit in the last place for any ``|x| < 2^62``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from tessera.errors import SessionError
from tessera.net.channel import Channel
from tessera.prg import PRG, fresh_seed
from tessera.ring.bitslice import slice_bits
from tessera.ring.ring import RING_DTYPE, RingArray

__all__ = ["Protocol", "Opening", "OpenObserver", "Permutation", "concat_flat", "split_flat", "check_permutation",
           "inverse_permutation"]

#: A permutation of ``range(n)`` as int64 positions (``x[pi]``).
Permutation = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Opening:
    """One opening a protocol made, as reported to its observers (the same at every party,
    except ``values``).

    ``kind``: ``"output"`` (:meth:`Protocol.open`: a value the computation reveals) or an
    internal opening of a masked value (``"masked"``, ``"masked-binary"``, ``"binary"``) that a
    protocol makes for its own steps (Beaver products, conversions, comparisons). ``shapes``:
    the shape of each opened value; ``recipients``: who learnt them (indices); ``values``: the
    opened ring values, None where this party is not a recipient.
    """

    kind: str
    shapes: tuple[tuple[int, ...], ...]
    recipients: tuple[int, ...]
    values: list[RingArray | None]


#: Called after each opening a protocol makes.
OpenObserver = Callable[[Opening], None]


def concat_flat(arrays: Sequence[RingArray]) -> RingArray:
    """All arrays raveled into one contiguous uint64 buffer (one message for many values)."""
    if len(arrays) == 1:
        return np.ascontiguousarray(arrays[0], dtype=RING_DTYPE).reshape(-1)
    return np.concatenate([np.asarray(a, dtype=RING_DTYPE).reshape(-1) for a in arrays])


def split_flat(flat: RingArray, shapes: Sequence[tuple[int, ...]]) -> list[RingArray]:
    """Inverse of :func:`concat_flat`."""
    out, pos = [], 0
    for s in shapes:
        n = int(np.prod(s, dtype=np.int64))
        out.append(flat[pos : pos + n].reshape(s))
        pos += n
    return out


def check_permutation(pi: object, n: int) -> Permutation:
    """``pi`` as an int64 array, checked to be a permutation of ``range(n)`` (SessionError if not)."""
    arr = np.asarray(pi)
    if arr.shape != (n,) or (n and arr.dtype.kind not in "iu"):
        raise SessionError(f"a permutation of {n} rows must be an integer array of shape ({n},), "
                           f"got {arr.dtype} of shape {arr.shape}")
    arr = arr.astype(np.int64)
    if n and (arr.min() < 0 or arr.max() >= n or np.bincount(arr, minlength=n).max() != 1):
        raise SessionError(f"not a permutation of range({n})")
    return arr


def inverse_permutation(pi: Permutation) -> Permutation:
    """``inv`` with ``inv[pi[t]] = t``."""
    inv = np.empty_like(pi)
    inv[pi] = np.arange(len(pi), dtype=pi.dtype)
    return inv


class Protocol(abc.ABC):
    """One party's side of an MPC protocol among ``n`` parties (endpoints ``0 .. n-1``)."""

    name: ClassVar[str]
    components: ClassVar[int]

    def __init__(self, channel: Channel, n_parties: int) -> None:
        if not 2 <= n_parties <= len(channel.names):
            raise SessionError(f"{self.name} needs at least 2 parties, got {n_parties}")
        self.ch = channel
        self.n = n_parties
        self.me = channel.me
        self.pair_prg: dict[int, PRG] = {}
        self.open_observers: list[OpenObserver] = []

    # -- set-up ------------------------------------------------------------------------------

    def setup(self) -> None:
        """Agree a fresh secret seed with every other party (the lower index chooses it)."""
        for j in range(self.n):
            if j > self.me:
                seed = fresh_seed()
                self.ch.send(j, seed)
                self.pair_prg[j] = PRG(seed)
        for j in range(self.me):
            self.pair_prg[j] = PRG(bytes(self.ch.recv(j)))
        self.ch.round()

    def close(self) -> None:  # noqa: B027 - a no-op by default; semi2k overrides it to stop its dealer
        """End the protocol (helpers such as a dealer are told to stop)."""

    # -- local -------------------------------------------------------------------------------

    @abc.abstractmethod
    def add_public(self, x: RingArray, p: RingArray) -> RingArray:
        """Shares of ``x + p`` for a public ring array ``p`` (broadcast against ``x``)."""

    # -- interactive -------------------------------------------------------------------------

    @abc.abstractmethod
    def input(self, owner: int, value: RingArray | None, shape: tuple[int, ...]) -> RingArray:
        """Shares of ``value`` (ring elements) known to party ``owner``; others pass ``None``."""

    @abc.abstractmethod
    def mul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        """Shares of the elementwise product (broadcasting), arithmetically shifted by ``trunc``."""

    @abc.abstractmethod
    def matmul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        """Shares of ``x @ y`` (numpy matmul semantics), arithmetically shifted by ``trunc``."""

    @abc.abstractmethod
    def truncate(self, x: RingArray, bits: int) -> RingArray:
        """Shares of ``x >> bits`` (signed), exact up to one unit in the last place."""

    @abc.abstractmethod
    def permute(self, x: RingArray, owner: int, pi: npt.ArrayLike | None) -> RingArray:
        """Fresh shares of ``x`` with its first value axis permuted by ``pi``: ``out[t] = x[pi[t]]``.

        Party ``owner`` alone knows the permutation (an int array, a permutation of
        ``range(x.shape[1])``); every other party passes ``None``. Nobody learns anything about
        the values, and the parties other than ``owner`` learn nothing about ``pi``; the output
        shares are independent of the input shares (re-randomised), so nobody can link an
        output row to an input row by comparing shares.
        """

    def open(self, xs: Sequence[RingArray], to: Sequence[int] | None = None) -> list[RingArray | None]:
        """Reveal several shared values in one round to the parties ``to`` (default: all).

        Returns the values for a recipient and ``None`` for everyone else. Reveals the values to
        the recipients and nothing else to anybody.
        """
        recipients = tuple(range(self.n)) if to is None else tuple(sorted(set(to)))
        values = self._open_raw(list(xs), recipients)
        self._opened("output", xs, recipients, values)
        return values

    def _opened(self, kind: str, xs: Sequence[RingArray], recipients: tuple[int, ...],
                values: Sequence[RingArray | None]) -> None:
        """Report an opening of the share arrays ``xs`` to the observers (see :class:`Opening`)."""
        if not self.open_observers:
            return
        opening = Opening(kind, tuple(tuple(int(d) for d in x.shape[1:]) for x in xs), recipients, list(values))
        for obs in self.open_observers:
            obs(opening)

    @abc.abstractmethod
    def _open_raw(self, xs: list[RingArray], recipients: tuple[int, ...]) -> list[RingArray | None]: ...

    # -- binary (XOR-shared 64-bit words) ----------------------------------------------------
    #
    # Binary share arrays have the same layout as arithmetic ones; XOR, shifts and AND with a
    # public word act on every component and are local.

    @abc.abstractmethod
    def xor_public(self, x: RingArray, p: RingArray) -> RingArray:
        """Binary shares of ``x XOR p`` for a public word array ``p``."""

    @abc.abstractmethod
    def and_(self, x: RingArray, y: RingArray) -> RingArray:
        """Binary shares of ``x AND y`` (bitwise, on whole words; shapes must match). 1 round."""

    @abc.abstractmethod
    def open_binary(self, xs: Sequence[RingArray]) -> list[RingArray]:
        """Reveal binary-shared words to every party (1 round)."""

    @abc.abstractmethod
    def a2b_addends(self, x: RingArray) -> tuple[RingArray, RingArray, bool]:
        """Two words whose sum mod 2^64 is ``x``: ``(A, B, a_public)``.

        ``B`` is binary-shared; ``A`` is binary-shared too, or a public word array when
        ``a_public``. The binary adder of :mod:`tessera.mpc.circuits` finishes the conversion.
        Reveals nothing.
        """

    def a2b_sliced(self, x: RingArray, rows: int) -> tuple[RingArray, RingArray, bool]:
        """:meth:`a2b_addends` in the bit-sliced layout of their lowest ``rows`` bits
        (:func:`~tessera.ring.bitslice.slice_bits`: ``(components, rows, ceil(n / 64))`` for flat
        ``(components, n)`` shares). This default slices every component of both addends; a
        protocol whose addends are known in the clear to some party lets that party slice them
        once before sharing. Reveals nothing."""
        a, b, a_public = self.a2b_addends(x)
        return slice_bits(a, rows), slice_bits(b, rows), a_public

    @abc.abstractmethod
    def b2a_bit(self, x: RingArray) -> RingArray:
        """Arithmetic shares of the lowest bit of binary-shared words (other bits must be 0)."""
