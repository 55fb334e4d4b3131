#!/usr/bin/env bash
# Tessera next to CrypTen 0.4.1, SecretFlow SPU 0.9.5 and MPyC 0.11 on the same workloads, in one
# run, interleaved: every round runs each case once, Tessera first, its peer right after.
# Usage: benchmarks/compare/run.sh [ROUNDS]     (default 3; see README.md for the venvs)
# Env: CRYPTEN_PY, SPU_PY, MPYC_PY (the peers' interpreters; a missing one skips its cases),
#      CASES (space-separated subset of the case names below), OUT (the JSON-lines file).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PYTHONPATH=$root
rounds=${1:-3}
CRYPTEN_PY=${CRYPTEN_PY:-/tmp/venv-crypten/bin/python}
SPU_PY=${SPU_PY:-/tmp/venv-spu/bin/python}
MPYC_PY=${MPYC_PY:-/tmp/venv-mpyc/bin/python}
OUT=${OUT:-$(mktemp /tmp/tessera-compare.XXXXXX.jsonl)}
errlog=${OUT%.jsonl}.stderr
py=${PYTHON:-python3}
CASES=${CASES:-"logreg1e4 logreg1e5 mul1e6 corr1e6 corr1e5"}

# case name -> pairs of "who|interpreter|command"; the first of each pair is Tessera
declare -A RUN
RUN[logreg1e4]="tessera|$py|$here/tessera_logreg.py --rows 10000 -p rep3
crypten|$CRYPTEN_PY|$here/crypten_logreg.py --rows 10000 --repeat 1"
RUN[logreg1e5]="tessera|$py|$here/tessera_logreg.py --rows 100000 -p rep3
crypten|$CRYPTEN_PY|$here/crypten_logreg.py --rows 100000 --repeat 1"
RUN[mul1e6]="tessera|$py|-m tessera.cli bench -w mul -p rep3 --n 1000000 --repeat 3
spu|$SPU_PY|$here/spu_bench.py -w mul --n 1000000 --repeat 3"
RUN[corr1e6]="tessera|$py|-m tessera.cli bench -w corr -p rep3 --n 1000000 --repeat 3
spu|$SPU_PY|$here/spu_bench.py -w corr --n 1000000 --repeat 3"
RUN[corr1e5]="tessera|$py|-m tessera.cli bench -w corr -p rep3 --n 100000 --repeat 3
mpyc|$MPYC_PY|$here/mpyc_corr.py -M3 --no-log --rows 100000 --repeat 3"

echo "results: $OUT (stderr: $errlog)" >&2
echo "{\"start\": \"$(date -u +%FT%TZ)\", \"uptime\": \"$(uptime)\", \"nproc\": $(nproc)}" >> "$OUT"
for round in $(seq 1 "$rounds"); do
  for case in $CASES; do
    while IFS='|' read -r who interp cmd; do
      if [ ! -x "$interp" ] && ! command -v "$interp" >/dev/null; then
        echo "{\"case\": \"$case\", \"round\": $round, \"who\": \"$who\", \"skipped\": \"no interpreter $interp\"}" >> "$OUT"
        continue
      fi
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      t0=$(date +%s.%N)
      # shellcheck disable=SC2086
      line=$(cd "$root" && "$interp" $cmd 2>>"$errlog" | tail -n 1)
      wall=$(echo "$(date +%s.%N) - $t0" | bc)
      case $line in
        \{*) echo "{\"case\": \"$case\", \"round\": $round, \"who\": \"$who\", \"load\": \"$load\", \"command_seconds\": $wall, \"result\": $line}" >> "$OUT" ;;
        *) echo "{\"case\": \"$case\", \"round\": $round, \"who\": \"$who\", \"load\": \"$load\", \"failed\": true}" >> "$OUT" ;;
      esac
      echo "round $round $case $who: ${line:0:160}" >&2
    done <<< "${RUN[$case]}"
  done
done
echo "{\"end\": \"$(date -u +%FT%TZ)\", \"uptime\": \"$(uptime)\"}" >> "$OUT"
"$py" "$here/table.py" "$OUT"
