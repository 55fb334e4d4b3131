"""MPyC 0.11: Pearson correlation of two secret columns of n rows, three parties (``-M3``).

Not part of Tessera: run it from an MPyC venv (see README.md in this folder)::

    /tmp/venv-mpyc/bin/python benchmarks/compare/mpyc_corr.py -M3 --no-log --rows 100000 --repeat 3

MPyC parses ``sys.argv`` when it is imported, hence ``--rows`` (``--n`` is ambiguous to it).
Party 0 inputs one column, party 1 the other (``mpc.input(..., senders=i)``, before the clock
starts, as in ``tessera bench -w corr``), as SecFxp(64) arrays (32 fractional bits; MPyC's numpy
API, its fastest path). Each timed run computes the centred sums of squares and products and
``sxy / (sqrt(sxx) sqrt(syy))`` (the formula of ``mpyc.statistics.correlation``, on arrays) and
outputs r to all parties, between barriers. The median run (party 0's clock) is one JSON line.

Every party passes the real column as its placeholder for another party's input: MPyC takes a
fixed-point value's ``integral`` flag from the local placeholder, so a zeros placeholder makes the
non-senders skip truncations the sender does, and the parties deadlock (seen here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from mpyc.runtime import mpc
from mpyc.statistics import _fsqrt

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=100_000)
ap.add_argument("--repeat", type=int, default=3)
args, _ = ap.parse_known_args()


async def main() -> None:
    n = args.rows
    await mpc.start()
    secfxp = mpc.SecFxp(64)
    rng = np.random.default_rng(17)  # benchmark data, as in tessera.runtime.workloads.corr
    col = rng.normal(size=n)
    other = 0.6 * col + 0.8 * rng.normal(size=n)
    x = mpc.input(secfxp.array(col), senders=0)  # only party 0's values are used
    y = mpc.input(secfxp.array(other), senders=1)  # only party 1's values are used
    await mpc.barrier("inputs")
    times = []
    r = 0.0
    for i in range(args.repeat):
        await mpc.barrier(f"run {i}")
        t = time.perf_counter()
        xx = x - np.sum(x) * (1 / n)
        yy = y - np.sum(y) * (1 / n)
        rho = (xx @ yy) / (_fsqrt(xx @ xx) * _fsqrt(yy @ yy))
        r = float(await mpc.output(rho))
        times.append(time.perf_counter() - t)
    await mpc.shutdown()
    if mpc.pid == 0:
        print(json.dumps({"peer": "mpyc-0.11", "workload": "corr", "n": n, "seconds": round(statistics.median(times), 4),
                          "times": [round(t, 4) for t in times],
                          "abs_error": abs(r - float(np.corrcoef(col, other)[0, 1]))}))


if __name__ == "__main__":
    mpc.run(main())
