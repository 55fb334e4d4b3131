"""Diagnostic party programs: check a deployment end to end, and rehearse failures.

``selftest`` computes known values from public seeds so every party can check the result;
``crash`` makes one party die abruptly (SIGKILL) in the middle of a protocol, to show that the
others stop cleanly with a clear error and reveal nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np

from tessera.mpc import functions as fn
from tessera.mpc.session import Session

__all__ = ["selftest", "crash", "selftest_inputs"]


def selftest_inputs(party: int, n: int) -> np.ndarray:
    """The public test vector party ``party`` contributes (so the checker can recompute it)."""
    return np.round(np.random.default_rng(1000 + party).uniform(-100, 100, n), 3)


def selftest(s: Session, n: int = 1000) -> dict[str, Any]:
    """Every party inputs its test vector; products, sums, comparisons and max are revealed."""
    xs = [s.input(p, selftest_inputs(p, n) if p == s.me else None, shape=(n,)) for p in range(s.n_parties)]
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    prod = xs[0] * xs[1]
    less = xs[0] < xs[1]
    big = fn.max(total)
    sums, products, lt, top = s.reveal(total, prod, less, big)
    return {"sum": sums, "product": products, "less": lt, "max": top, "transcript": s.transcript_hash()}


def crash(s: Session, victim: str, n: int = 100_000, rounds: int = 50) -> dict[str, Any]:
    """Multiply in a loop; party ``victim`` kills itself (SIGKILL) half-way through."""
    x = s.input(0, np.ones(n) if s.me == 0 else None, shape=(n,), bound=1.0)
    for i in range(rounds):
        if i == rounds // 2 and s.party == victim:
            os.kill(os.getpid(), signal.SIGKILL)
        x = x * x
    return {"value": s.reveal(x.sum())[0]}
