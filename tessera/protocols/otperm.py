"""The permutation correlation without a dealer: an oblivious switching network over OT.

The ``perm`` correlation (:mod:`.correlations`) for owner ``p``: every party holds a share
``a_j`` of a random mask ``A``, ``p`` alone knows a random permutation ``sigma``, and the
parties hold shares ``b_j`` of ``B = A[sigma]``. Without a dealer, every other party ``q`` and
``p`` run an *oblivious switching network* (Mohassel–Sadeghian 2013, "How to hide circuits in
MPC"), so that ``p`` ends with ``P_q`` and ``q`` with ``Q_q`` where ``P_q + Q_q = a_q[sigma]``:

* the network is Batcher's bitonic sorter (1968) on ``M = 2^ceil(log2 m)`` wires (a Waksman
  network would need ``M log M`` switches instead of ``M log^2 M / 4``, but its routing is far
  longer code; the sorter is routed by sorting: ``p`` sorts the destinations ``sigma^-1`` in the
  clear and records which comparators swap);
* ``q`` starts with ``Q = a_q`` (padded rows are 0), ``p`` with ``P = 0``. At each layer ``q``
  draws fresh masks ``R`` and offers, for the switch on wires ``(i, l)``, the messages
  ``(Q_i - R_i, Q_l - R_l)`` (straight) and ``(Q_l - R_i, Q_i - R_l)`` (crossed); ``p`` takes
  the one its swap bit selects by a 1-out-of-2 OT and adds it to its own, swapped, values; then
  ``Q = R``. Every layer's messages depend only on ``q``'s masks, so the whole network is one
  batch of random OTs plus one message of encrypted pairs (three rounds).

``p`` then holds ``b_p = a_p[sigma] + sum_q P_q`` and every ``q`` holds ``b_q = Q_q``. What each
sees: ``q`` only the OT extension (which hides ``p``'s swap bits); ``p`` one message of each
pair, uniform because padded by ``q``'s fresh masks, and nothing of the other (padded by a
random-OT message it cannot compute). ``b_q`` is ``q``'s last mask layer: fresh randomness.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tessera.ot import Cot, OtMesh
from tessera.prg import PRG
from tessera.protocols.base import inverse_permutation
from tessera.ring.ring import RingArray

__all__ = ["perm_correction", "bitonic_layers", "route"]


def bitonic_layers(size: int) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]]:
    """The comparators of the bitonic sorter on ``size`` (a power of two) wires: per layer, the
    wire pairs ``(i, l)`` with ``i < l`` and whether the pair sorts ascending."""
    layers = []
    idx = np.arange(size, dtype=np.int64)
    k = 2
    while k <= size:
        j = k // 2
        while j >= 1:
            lo = idx[(idx & j) == 0]
            layers.append((lo, lo | j, (lo & k) == 0))
            j //= 2
        k *= 2
    return layers


def route(dest: npt.NDArray[np.int64]) -> list[npt.NDArray[np.bool_]]:
    """The swap bits of every comparator when the sorter sorts the keys ``dest`` (distinct)."""
    keys = dest.copy()
    bits = []
    for lo, hi, asc in bitonic_layers(len(dest)):
        swap = (keys[lo] > keys[hi]) == asc
        a, b = keys[lo].copy(), keys[hi].copy()
        keys[lo] = np.where(swap, b, a)
        keys[hi] = np.where(swap, a, b)
        bits.append(swap)
    return bits


def _wires(m: int) -> int:
    return 1 << max(1, (m - 1).bit_length())


def perm_correction(ot: OtMesh, prg: PRG, me: int, n: int, owner: int, a: RingArray,
                    sigma: npt.NDArray[np.int64] | None) -> RingArray:
    """This party's share ``b_me`` of ``B = A[sigma]`` (``a`` its share of ``A``, rows first;
    ``sigma`` given at the owner only). See the module doc."""
    m = a.shape[0]
    w = int(np.prod(a.shape[1:], dtype=np.int64))
    size = _wires(m)
    layers = bitonic_layers(size)
    half = size // 2
    total = half * len(layers)
    if me != owner:
        q = np.zeros((size, w), dtype=np.uint64)
        q[:m] = a.reshape(m, w)
        straight, crossed = [], []
        for lo, hi, _ in layers:
            r = prg.ring((size, w))
            straight.append(np.concatenate([q[lo] - r[lo], q[hi] - r[hi]], axis=1))
            crossed.append(np.concatenate([q[hi] - r[lo], q[lo] - r[hi]], axis=1))
            q = r
        (h,) = ot.run([Cot(owner, "send", "random", m=total, w=2 * w)])
        enc = np.stack([np.concatenate(straight), np.concatenate(crossed)], axis=1) + h
        ot.ch.send(owner, np.ascontiguousarray(enc).data)
        ot.ch.round()
        return np.ascontiguousarray(q[:m]).reshape(a.shape)
    assert sigma is not None
    dest = np.arange(size, dtype=np.int64)
    dest[:m] = inverse_permutation(sigma)
    swaps = route(dest)
    choices = np.concatenate(swaps).astype(np.uint8)
    peers = [j for j in range(n) if j != owner]
    outs = ot.run([Cot(j, "recv", "random", choices, w=2 * w) for j in peers])
    ot.ch.round()
    b = a[sigma].reshape(m, w).copy()
    sel = np.arange(total)
    for j, hc in zip(peers, outs):
        enc = np.frombuffer(ot.ch.recv(j), dtype=np.uint64).reshape(total, 2, 2 * w)
        got = enc[sel, choices] - hc
        p = np.zeros((size, w), dtype=np.uint64)
        for t, (lo, hi, _) in enumerate(layers):
            c = swaps[t][:, None]
            g = got[t * half : (t + 1) * half]
            p_lo, p_hi = p[lo], p[hi]
            p[lo] = np.where(c, p_hi, p_lo) + g[:, :w]
            p[hi] = np.where(c, p_lo, p_hi) + g[:, w:]
        b += p[:m]
    return b.reshape(a.shape)
