"""Benchmark workloads, as party programs for the local cluster (``tessera bench``).

Each program builds its inputs locally, synchronises the parties with one opening, then
times ``repeat`` runs of the measured step; it returns the per-run seconds, and the bytes and
rounds of one run, so the launcher can take medians and compare with theoretical costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tessera.mpc import approx
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, stack

__all__ = ["WORKLOADS", "timed"]


def timed(s: Session, repeat: int, step: Callable[[], object]) -> dict[str, Any]:
    """Run ``step`` ``repeat`` times between barriers; seconds per run, bytes and rounds of one."""
    barrier = s.input(0, np.zeros(1) if s.me == 0 else None, shape=(1,))
    times: list[float] = []
    step_bytes = step_rounds = 0
    for _ in range(repeat):
        s.reveal(barrier)  # all parties start together
        b, r = s.stats.total_bytes, s.stats.rounds
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
        step_bytes, step_rounds = s.stats.total_bytes - b, s.stats.rounds - r
    return {"times": times, "bytes": step_bytes, "rounds": step_rounds}


def _two_vectors(s: Session, n: int) -> tuple[SecretTensor, SecretTensor]:
    rng = np.random.default_rng(s.me)  # benchmark data, not secret randomness
    a = s.input(0, rng.normal(size=n) if s.me == 0 else None, shape=(n,))
    b = s.input(1, rng.normal(size=n) if s.me == 1 else None, shape=(n,))
    return a, b


def mul(s: Session, n: int, repeat: int = 3) -> dict[str, Any]:
    """Elementwise secret x secret fixed-point products (with truncation)."""
    a, b = _two_vectors(s, n)
    return timed(s, repeat, lambda: a * b)


def matmul(s: Session, n: int = 100, repeat: int = 3) -> dict[str, Any]:
    """n x n @ n x n fixed-point matrix products."""
    rng = np.random.default_rng(s.me)
    a = s.input(0, rng.normal(size=(n, n)) if s.me == 0 else None, shape=(n, n), bound=8.0)
    b = s.input(1, rng.normal(size=(n, n)) if s.me == 1 else None, shape=(n, n), bound=8.0)
    return timed(s, repeat, lambda: a @ b)


def compare(s: Session, n: int, repeat: int = 3) -> dict[str, Any]:
    """Elementwise exact comparisons ``a < b``."""
    a, b = _two_vectors(s, n)
    return timed(s, repeat, lambda: a < b)


def meanvar(s: Session, n: int, repeat: int = 3) -> dict[str, Any]:
    """Mean and variance of n rows split evenly across the parties, reduced locally first.

    Each party scans its own rows (timed too), shares (count, sum, sum of squares), and the
    combination and the division by the public total count run under MPC.
    """
    rows = n // s.n_parties
    local = np.random.default_rng(s.me).normal(10.0, 2.0, size=rows)

    def step() -> object:
        stats = np.array([local.sum(), np.dot(local, local)]) / 1e6  # scaled into the ring's range
        parts = [s.input(p, stats if p == s.me else None, shape=(2,)) for p in range(s.n_parties)]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        mean = total[0] / (rows * s.n_parties / 1e6)
        ex2 = total[1] / (rows * s.n_parties / 1e6)
        return s.reveal(mean, ex2 - mean * mean)

    return timed(s, repeat, step)


def sigmoid(s: Session, n: int, repeat: int = 3) -> dict[str, Any]:
    """Elementwise sigmoid over the whole real line."""
    a, _ = _two_vectors(s, n)
    return timed(s, repeat, lambda: approx.sigmoid(a * 4))


def corr(s: Session, n: int, repeat: int = 3) -> dict[str, Any]:
    """Pearson correlation of two secret-shared columns of n rows (one held by each of two
    parties): one batched Gram matrix, a secure inverse square root; reveals only r."""
    rng = np.random.default_rng(s.me + 17)
    col = rng.normal(size=n)
    a = s.input(0, col if s.me == 0 else None, shape=(n,), bound=8.0)
    b = s.input(1, (0.6 * col + 0.8 * rng.normal(size=n)) if s.me == 1 else None, shape=(n,), bound=8.0)
    result: dict[str, Any] = {}

    def step() -> object:
        x = stack([a, b])
        gram = (x @ x.T).scale(1 / n, bound=64.0)  # |values| < 8 in this benchmark
        mean = x.sum(axis=1).scale(1 / n, bound=8.0 * n)
        cov = gram - mean.reshape(2, 1) * mean.reshape(1, 2)
        inv_sd = approx.rsqrt(stack([cov[0, 0], cov[1, 1]]))
        r = cov[0, 1] * inv_sd[0] * inv_sd[1]
        value = r.reveal()
        assert value is not None  # every party receives r
        result["r"] = float(value)
        return result["r"]

    out = timed(s, repeat, step)
    out["r"] = result["r"]
    return out


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "mul": mul,
    "matmul": matmul,
    "compare": compare,
    "meanvar": meanvar,
    "sigmoid": sigmoid,
    "corr": corr,
}
