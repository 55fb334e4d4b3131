"""CrypTen 0.4.1: vertical logistic regression, 10 gradient iterations, three processes, end to end.

Not part of Tessera: run it from a CrypTen venv (see README.md in this folder)::

    /tmp/venv-crypten/bin/python benchmarks/compare/crypten_logreg.py --rows 10000 --repeat 3

The data are Tessera's ``tessera bench -w logreg`` rows (``tessera.cli.bench._frames``, seed 1:
10 features uniform in [-10, 10], a Bernoulli label), split by columns the same way: P0 holds
x0-x3, P1 x4-x7, P2 x8, x9 and y. Each party encrypts its own columns (``cryptensor(src=rank)``);
the model is fitted by 10 full-batch gradient steps with CrypTen's sigmoid (the style of CrypTen's
own examples), and the weights are revealed. One run is three fresh processes rendezvousing over
torch.distributed (gloo, plain TCP on 127.0.0.1, CrypTen's default trusted-first-party triples);
``seconds`` is the wall time from spawning them to their exit, ``compute_seconds`` the time
party 0 spends after ``crypten.init()``.

Compatibility shim (import time, inside this script only): CrypTen 0.4.1's ONNX converter imports
``torch.onnx.symbolic_registry`` or ``torch.onnx._internal.registration``, which torch 2.13 has
neither of; an empty ``torch.onnx.symbolic_registry`` module is registered first. Only CrypTen's
model-import path uses it, which this benchmark does not.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import types

import numpy as np

FEATURES = 10
OWNERS = [range(0, 4), range(4, 8), range(8, 10)]  # np.array_split of x0..x9, y over 3 parties


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``tessera bench -w logreg`` (same generator, seed and formula)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-10, 10, size=(n, FEATURES))
    beta = np.linspace(-0.5, 0.5, FEATURES)
    y = rng.random(n) < 1 / (1 + np.exp(-(x @ beta) / 3))
    return x, y.astype(np.float64)


def _gd(x: np.ndarray, y: np.ndarray, iterations: int, lr: float) -> np.ndarray:
    w = np.zeros(x.shape[1] + 1)
    xb = np.hstack([x, np.ones((len(x), 1))])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(xb @ w)))
        w -= lr * xb.T @ (p - y) / len(y)
    return w


def party(rank: int, n: int, iterations: int, lr: float) -> None:
    t0 = time.perf_counter()
    sys.modules.setdefault("torch.onnx.symbolic_registry", types.ModuleType("torch.onnx.symbolic_registry"))
    import crypten
    import torch

    t1 = time.perf_counter()
    crypten.init()
    t = time.perf_counter()
    x, y = _data(n)
    cols = [crypten.cryptensor(torch.tensor(x[:, list(OWNERS[r])], dtype=torch.float32) if r == rank
                               else torch.zeros(n, len(OWNERS[r])), src=r) for r in range(3)]
    label = crypten.cryptensor(torch.tensor(y, dtype=torch.float32).reshape(n, 1) if rank == 2
                               else torch.zeros(n, 1), src=2)
    xs = crypten.cat(cols, dim=1)
    w = crypten.cryptensor(torch.zeros(FEATURES, 1))
    b = crypten.cryptensor(torch.zeros(1))
    for _ in range(iterations):
        p = (xs.matmul(w) + b).sigmoid()
        err = p - label
        w = w - xs.t().matmul(err).div(n) * lr  # lr / n is below 2^-16: divide first
        b = b - err.sum().div(n) * lr
    coef = torch.cat([w.get_plain_text().flatten(), b.get_plain_text().flatten()]).numpy()
    compute = time.perf_counter() - t
    if rank == 0:
        print(json.dumps({"import_seconds": t1 - t0, "init_seconds": t - t1, "compute_seconds": compute, "coef": coef.tolist()}), flush=True)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_once(n: int, iterations: int, lr: float) -> dict[str, object]:
    env = os.environ | {"WORLD_SIZE": "3", "RENDEZVOUS": "env://", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_port()), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--party", str(r), "--rows", str(n),
                               "--iterations", str(iterations), "--lr", str(lr)],
                              env=env | {"RANK": str(r)}, stdout=subprocess.PIPE, text=True) for r in range(3)]
    outs = [p.communicate(timeout=3600)[0] for p in procs]
    seconds = time.perf_counter() - t
    if any(p.returncode for p in procs):
        raise SystemExit(f"a CrypTen party failed: {[p.returncode for p in procs]}")
    res = json.loads(outs[0].strip().splitlines()[-1])
    return {"seconds": seconds, **res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--party", type=int, default=None)
    a = ap.parse_args()
    if a.party is not None:
        party(a.party, a.rows, a.iterations, a.lr)
        return
    runs = [run_once(a.rows, a.iterations, a.lr) for _ in range(a.repeat)]
    x, y = _data(a.rows)
    plain = _gd(x, y, a.iterations, a.lr)
    print(json.dumps({"peer": "crypten-0.4.1", "workload": "logreg", "n": a.rows, "iterations": a.iterations,
                      "seconds": round(statistics.median(float(r["seconds"]) for r in runs), 4),
                      "times": [round(float(r["seconds"]), 4) for r in runs],
                      **{k: round(statistics.median(float(r[k]) for r in runs), 4)
                         for k in ("import_seconds", "init_seconds", "compute_seconds")},
                      "max_abs_coef_error_vs_plain_gd": float(np.max(np.abs(np.array(runs[0]["coef"]) - plain)))}))


if __name__ == "__main__":
    main()
