"""Print the comparison table from ``run.sh``'s JSON lines: medians over rounds and ratios.

``seconds`` is each tool's own figure: end to end (process start to result) for logreg, the
measured step after the inputs are shared for mul and corr. ``ratio`` is the peer's median over
Tessera's, so above 1 means Tessera is faster.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    parts: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # a tool's own split of its time
    loads: list[str] = []
    order: list[str] = []
    notes: list[str] = []
    for r in rows:
        if "case" not in r:
            if "uptime" in r:
                loads.append(r["uptime"].strip())
            continue
        if r["case"] not in order:
            order.append(r["case"])
        if "result" in r:
            seconds[(r["case"], r["who"])].append(float(r["result"]["seconds"]))
            for key, value in r["result"].items():
                if key.endswith("_seconds") and key != "seconds":
                    parts[(r["case"], r["who"], key)].append(float(value))
            loads.append(f"round {r['round']} {r['case']} {r['who']}: load {r['load']}")
        else:
            notes.append(f"round {r['round']} {r['case']} {r['who']}: {r.get('skipped') or 'failed'}")
    print(f"{'case':<10} {'peer':<8} {'tessera s':>10} {'peer s':>10} {'ratio':>7}  runs (tessera | peer)")
    for case in order:
        tess = seconds.get((case, "tessera"), [])
        for (c, who), vals in seconds.items():
            if c != case or who == "tessera":
                continue
            t = statistics.median(tess) if tess else float("nan")
            p = statistics.median(vals)
            print(f"{case:<10} {who:<8} {t:>10.3f} {p:>10.3f} {p / t:>7.2f}  "
                  f"{' '.join(f'{v:.3f}' for v in tess)} | {' '.join(f'{v:.3f}' for v in vals)}")
    for (case, who, key), vals in parts.items():
        print(f"  {case} {who} {key}: median {statistics.median(vals):.3f}")
    for line in notes:
        print("note:", line)
    if loads:
        print("load at start:", loads[0])
        print("load at end:", loads[-1])


if __name__ == "__main__":
    main(sys.argv[1])
