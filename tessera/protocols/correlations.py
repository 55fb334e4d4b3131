"""Correlated randomness: what a dealer (or a pair of parties) prepares for the online phase.

A correlation is a list of *random* components (each party's share drawn from its PRG) and
*derived* components, whose values are a function of the random ones (e.g. ``c = a * b`` for a
Beaver triple). With a dealer, every party but the last draws its share of every component
from the seed it shares with the dealer; the last party draws its random shares the same way
and receives explicit corrections only for the derived ones. Both sides rebuild the same
correlation from a small public description (kind, shapes, parameters), so they draw in
lock-step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tessera.errors import SessionError
from tessera.prg import PRG
from tessera.protocols.base import Permutation
from tessera.ring.ring import RING_BITS, RingArray
from tessera.ring.ring import matmul as ring_matmul

__all__ = ["Comp", "Correlation", "build", "draw", "random_permutation"]

Shape = tuple[int, ...]
LOW63 = np.uint64((1 << 63) - 1)


@dataclass(frozen=True)
class Comp:
    """One component: its shape, whether it is XOR-shared, and (random XOR comps) its width.

    ``owner`` (random components only): the component is not shared but known to that party
    alone, drawn from the stream it shares with the dealer (nobody else draws it). ``perm``: the
    component is a uniformly random permutation of ``range(shape[0])`` (an owned component).
    """

    shape: Shape
    xor: bool = False
    nbits: int = RING_BITS
    owner: int | None = None
    perm: bool = False


@dataclass(frozen=True)
class Correlation:
    random: tuple[Comp, ...]
    derived: tuple[Comp, ...]
    derive: Callable[[list[RingArray]], list[RingArray]]
    #: the party that receives the corrections of the derived components (None: the last party)
    receiver: int | None = None


def random_permutation(prg: PRG, n: int) -> Permutation:
    """A uniformly random permutation of ``range(n)`` (int64) from a PRG: the order of ``n``
    random 64-bit words (a tie, probability below ``n^2 / 2^65``, keeps the earlier index)."""
    return np.argsort(prg.ring(n), kind="stable").astype(np.int64)


def draw(prg: PRG, comp: Comp) -> RingArray:
    """One party's share of a component from its PRG stream. A permutation component comes as its
    positions' 64-bit words (``.view(np.int64)`` gives the :data:`Permutation` back)."""
    if comp.perm:
        return random_permutation(prg, comp.shape[0]).view(np.uint64)
    if comp.xor and comp.nbits < RING_BITS:
        return prg.bits(comp.shape, comp.nbits)
    return prg.ring(comp.shape)


def _trunc_mask(v: RingArray, f: int) -> list[RingArray]:
    # TruncPr masks, after Catrina-Saxena 2010 adapted to Z_2^k: from r, its top bit and the
    # bits 63..f of r (i.e. (r mod 2^63) >> f).
    return [v >> np.uint64(63), (v & LOW63) >> np.uint64(f)]


def _product(op: Callable[[RingArray, RingArray], RingArray], out: Shape, shapes: Sequence[Shape],
             params: dict[str, int]) -> Correlation:
    """A Beaver triple for ``op``; with ``f`` in params, also the truncation mask of the output."""
    s1, s2 = shapes
    f = params.get("f", 0)
    if not f:
        return Correlation((Comp(s1), Comp(s2)), (Comp(out),), lambda v: [op(v[0], v[1])])
    return Correlation(
        (Comp(s1), Comp(s2), Comp(out)),
        (Comp(out), Comp(out), Comp(out)),
        lambda v: [op(v[0], v[1]), *_trunc_mask(v[2], f)],
    )


def _mul(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    return _product(np.multiply, tuple(np.broadcast_shapes(*shapes)), shapes, params)


def _matmul(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    out = np.matmul(np.empty(shapes[0], np.uint8), np.empty(shapes[1], np.uint8)).shape
    return _product(ring_matmul, out, shapes, params)


def _trunc(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    (s,) = shapes
    f = params["f"]
    return Correlation((Comp(s),), (Comp(s), Comp(s)), lambda v: _trunc_mask(v[0], f))


def _and(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    (s,) = shapes
    return Correlation((Comp(s, True), Comp(s, True)), (Comp(s, True),), lambda v: [v[0] & v[1]])


def _edabit(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    # a random ring element, shared both arithmetically and as XOR-shared bits of one word
    (s,) = shapes
    return Correlation((Comp(s),), (Comp(s, True),), lambda v: [v[0]])


def _dabit(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    # a random bit, XOR-shared (one bit per word) and arithmetically shared
    (s,) = shapes
    return Correlation((Comp(s, True, 1),), (Comp(s),), lambda v: [v[0]])


def _perm(shapes: Sequence[Shape], params: dict[str, int]) -> Correlation:
    # A permutation correlation for owner p (rows of shape s[0]): a shared random mask A, a random
    # permutation sigma known to p alone, and B = sigma(A) (B[t] = A[sigma[t]]) shared so that
    # p holds its share in full from the dealer's correction and every other party draws its own.
    (s,) = shapes
    if not s:
        raise SessionError("a permutation correlation needs at least one dimension")
    owner = params["owner"]
    return Correlation((Comp(s), Comp((s[0],), owner=owner, perm=True)), (Comp(s),),
                       lambda v: [v[0][v[1]]], receiver=owner)


_KINDS: dict[str, Callable[[Sequence[Shape], dict[str, int]], Correlation]] = {
    "mul": _mul,
    "matmul": _matmul,
    "trunc": _trunc,
    "and": _and,
    "edabit": _edabit,
    "dabit": _dabit,
    "perm": _perm,
}


def build(kind: str, shapes: Sequence[Sequence[int]], params: dict[str, int] | None = None) -> Correlation:
    """The correlation named ``kind`` for the given component shapes."""
    try:
        maker = _KINDS[kind]
    except KeyError:
        raise SessionError(f"unknown correlation kind {kind!r}") from None
    return maker([tuple(int(d) for d in s) for s in shapes], dict(params or {}))
