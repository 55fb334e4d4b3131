"""MPyC 0.11: Pearson correlation of two secret columns of n rows, three parties (``-M3``).

Not part of Tessera: run it from an MPyC venv (see README.md in this folder)::

    /tmp/venv-mpyc/bin/python benchmarks/compare/mpyc_corr.py -M3 --no-log --rows 100000 --repeat 3

MPyC parses ``sys.argv`` when it is imported, hence ``--rows`` (``--n`` is ambiguous to it).
Party 0 inputs one column, party 1 the other (``mpc.input(..., senders=i)``, before the clock
starts, as in ``tessera bench -w corr``); each timed run is ``mpyc.statistics.correlation`` on
SecFxp(64) (32 fractional bits) and the output of r to all parties, between barriers. MPyC's own
list API is used: its numpy-array path (``np.sum(x) / n`` on a secure fixed-point array of
non-integral values) deadlocked parties 0 and 1 here while party 2 output garbage.
The median run (party 0's clock) is printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from mpyc.runtime import mpc
from mpyc.statistics import correlation

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=100_000)
ap.add_argument("--repeat", type=int, default=3)
args, _ = ap.parse_known_args()


async def main() -> None:
    n = args.rows
    secfxp = mpc.SecFxp(64)
    await mpc.start()
    rng = np.random.default_rng(17)  # benchmark data, as in tessera.runtime.workloads.corr
    col = rng.normal(size=n)
    other = 0.6 * col + 0.8 * rng.normal(size=n)
    x = mpc.input([secfxp(float(v) if mpc.pid == 0 else 0.0) for v in col], senders=0)
    y = mpc.input([secfxp(float(v) if mpc.pid == 1 else 0.0) for v in other], senders=1)
    await mpc.barrier("inputs")
    times = []
    r = 0.0
    for i in range(args.repeat):
        await mpc.barrier(f"run {i}")
        t = time.perf_counter()
        r = float(await mpc.output(correlation(x, y)))
        times.append(time.perf_counter() - t)
    await mpc.shutdown()
    if mpc.pid == 0:
        print(json.dumps({"peer": "mpyc-0.11", "workload": "corr", "n": n, "seconds": round(statistics.median(times), 4),
                          "times": [round(t, 4) for t in times],
                          "abs_error": abs(r - float(np.corrcoef(col, other)[0, 1]))}))


if __name__ == "__main__":
    mpc.run(main())
