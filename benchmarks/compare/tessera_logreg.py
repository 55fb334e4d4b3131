"""Tessera's side of the logistic-regression comparison, timed end to end like the peers.

Runs ``tessera bench -w logreg``'s workload (vertical, 10 Newton iterations, the same rows as
``crypten_logreg.py``) once through ``run_local`` as three party processes over mutual TLS (forked
from the fork server this script starts first, so its import overlaps the script's), and prints one
JSON line: ``seconds`` is the wall time around ``run_local`` (spawning the parties,
their imports, TLS, the fit, the release), ``party_seconds`` what ``run_local`` reports (from a
party's start of work after its imports), and the rounds. Run with ``PYTHONPATH`` at the tree::

    PYTHONPATH=. python benchmarks/compare/tessera_logreg.py --rows 10000 -p rep3
"""

from __future__ import annotations

import argparse
import json
import time

from tessera.runtime import forkserver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("-p", "--protocol", default="rep3")
    a = ap.parse_args()
    forkserver.warm()  # as an application that will run jobs does: the parties' imports overlap this script's
    from tessera.cli.bench import ANALYSES
    t = time.perf_counter()
    res = ANALYSES["logreg"](a.rows, 3, a.protocol, None, None)
    seconds = time.perf_counter() - t
    print(json.dumps({"peer": f"tessera-{a.protocol}", "workload": "logreg", "n": a.rows,
                      "seconds": round(seconds, 4), "party_seconds": round(res.seconds, 4),
                      "rounds": max(c["rounds"] for c in res.comm.values())}))


if __name__ == "__main__":
    main()
