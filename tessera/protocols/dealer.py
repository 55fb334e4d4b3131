"""The semi2k dealer: a helper endpoint that prepares correlated randomness.

Set-up: the dealer sends every party a fresh 16-byte seed. Online: the *last* party asks for
each correlation with a small JSON request (kind, shapes, parameters); every party draws its
shares from its dealer seed, and the dealer answers the correlation's *receiver* (the last
party, except for a permutation correlation, whose receiver is the permuting party) with the
corrections for the derived components only. Dealer traffic is therefore one ring element per Beaver triple (the
``c`` correction) and two per truncation mask. The dealer sees only random values; it learns
nothing about the parties' inputs. It is trusted not to collude with the parties (semi-honest).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence

import numpy as np

from tessera.errors import SessionError
from tessera.net.channel import Channel
from tessera.prg import PRG, fresh_seed
from tessera.protocols.base import concat_flat, split_flat
from tessera.protocols.correlations import Correlation, build, draw
from tessera.protocols.preprocessing import Provider
from tessera.ring.ring import RingArray, ring_op

__all__ = ["Dealer", "DealerClient", "Pending"]


def _combine(xor: bool, shares: list[RingArray]) -> RingArray:
    out = shares[0].copy()
    for s in shares[1:]:
        if xor:
            out ^= s
        else:
            out += s
    return out


class Pending:
    """One party's shares of a requested correlation; derived shares may still be in flight."""

    def __init__(self, client: DealerClient, corr: Correlation, random: list[RingArray]) -> None:
        self._client = client
        self._corr = corr
        self.random = random
        self._derived: list[RingArray] | None = None

    def set_derived(self, derived: list[RingArray]) -> None:
        self._derived = derived

    def derived(self) -> list[RingArray]:
        """The derived shares (the last party blocks here until the dealer's answer arrives)."""
        while self._derived is None:
            self._client._receive_next()
        return self._derived


class DealerClient(Provider):
    """A party's access to the dealer: shares from the dealer seed, corrections if last."""

    def __init__(self, channel: Channel, dealer: int, seed: bytes, me: int, n_parties: int) -> None:
        self._ch = channel
        self._dealer = dealer
        self._prg = PRG(seed)
        self._me = me
        self._n = n_parties
        self._is_last = me == n_parties - 1
        self._waiting: deque[Pending] = deque()

    def get(self, kind: str, shapes: Sequence[tuple[int, ...]], params: dict[str, int] | None = None) -> Pending:
        """Shares of a fresh correlation; the request goes out at once so it overlaps the caller's work."""
        corr = build(kind, shapes, params)
        if self._is_last:
            req = {"k": kind, "s": [list(s) for s in shapes], "p": dict(params or {})}
            self._ch.send(self._dealer, json.dumps(req).encode())
        # components owned by another party are not drawn here (None keeps the positions)
        random = [draw(self._prg, c) if c.owner in (None, self._me) else None for c in corr.random]
        pending = Pending(self, corr, random)  # type: ignore[arg-type]
        receiver = self._n - 1 if corr.receiver is None else corr.receiver
        if receiver == self._me:
            self._waiting.append(pending)
        else:
            pending.set_derived([draw(self._prg, c) for c in corr.derived])
        return pending

    def _receive_next(self) -> None:
        pending = self._waiting.popleft()
        flat = np.frombuffer(self._ch.recv(self._dealer), dtype=np.uint64)
        pending.set_derived(split_flat(flat, [c.shape for c in pending._corr.derived]))

    def close(self) -> None:
        if self._is_last:
            self._ch.send(self._dealer, b'{"k": "close"}')


class Dealer:
    """The dealer endpoint's loop: seeds to every party, then corrections to the last party."""

    def __init__(self, channel: Channel, n_parties: int) -> None:
        if channel.me != n_parties:
            raise SessionError("the dealer is the endpoint after the parties")
        self._ch = channel
        self._n = n_parties
        self._prgs: list[PRG] = []

    def serve(self) -> int:
        """Run until the last party closes the session; returns the number of requests served."""
        for j in range(self._n):
            seed = fresh_seed()
            self._ch.send(j, seed)
            self._prgs.append(PRG(seed))
        last = self._n - 1
        served = 0
        while True:
            req = json.loads(bytes(self._ch.recv(last)))
            if req.get("k") == "close":
                return served
            corr = build(req["k"], req["s"], req.get("p"))
            receiver = last if corr.receiver is None else corr.receiver
            if not 0 <= receiver < self._n:
                raise SessionError(f"a correlation for an unknown party {receiver}")
            self._ch.send(receiver, concat_flat(self._corrections(corr, receiver)).data)
            served += 1

    @ring_op
    def _corrections(self, corr: Correlation, receiver: int) -> list[RingArray]:
        # every party's stream advances in component order, as the parties draw them
        values = []
        for c in corr.random:
            if c.owner is not None:
                values.append(draw(self._prgs[c.owner], c))
            else:
                values.append(_combine(c.xor, [draw(p, c) for p in self._prgs]))
        derived_shares = [[draw(p, c) for c in corr.derived] for j, p in enumerate(self._prgs) if j != receiver]
        targets = corr.derive(values)
        out = []
        for i, c in enumerate(corr.derived):
            t = np.asarray(targets[i], dtype=np.uint64)
            shares = [d[i] for d in derived_shares]
            out.append(t ^ _combine(True, shares) if c.xor else t - _combine(False, shares))
        return out
