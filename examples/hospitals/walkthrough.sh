#!/usr/bin/env bash
# The README's outsourced walkthrough (#17): HOSPITALS hospitals that only input (contract role
# owner) and three compute nodes c1-c3 (role compute, rep3), with the tessera command only.
#   bash examples/hospitals/walkthrough.sh [DIR]     (HOSPITALS=30, BASE_PORT=18400, KEEP=1 leaves c1-c3 running)
# Every hospital's node stops as soon as its shares are sent; the compute nodes finish the
# meta-analysis without them and the analyst gets the result from c1.
set -euo pipefail
W=${1:-hospitals}
BASE=${BASE_PORT:-18400}
N=${HOSPITALS:-30}
mkdir -p "$W"

# 1-3. each hospital's trial (synthetic), every node (hospitals: role owner, c1-c3: role compute;
# node i serves its API on BASE + 10 i, MPC on the 8 ports after it), the contract signed by all
# at every node, and the analyst's token at c1 -- in one command. Each organisation's own steps in
# a deployment, one by one, are in the README ("Thirty hospitals through three compute nodes").
tessera node example "$W" --hospitals "$N" --base-port "$BASE"
HOSP=$(for i in $(seq 1 "$N"); do printf 'hospital_%02d ' "$i"; done)
COMPUTE="c1 c2 c3"
tessera contract verify "$W/c1/contract.toml"

# 4. the job names every hospital's trial
{
  echo 'analysis = "meta_analysis"'
  echo 'version = "1.0"'
  echo "datasets = [$(for h in $HOSP; do printf '"trial_%s", ' "$h"; done | sed 's/, $//')]"
  echo 'columns = ["outcome", "treatment"]'
  echo 'protocol = "rep3"'
  echo 'compute = ["c1", "c2", "c3"]'
  echo 'recipients = ["analyst-1"]'
  echo '[params]'
  echo 'outcome = "outcome"'
  echo 'treatment = "treatment"'
} > "$W/meta-analysis.toml"

# 5. start every node
declare -A PID
for n in $COMPUTE $HOSP; do
  tessera node start "$W/$n" > "$W/$n.log" 2>&1 &
  PID[$n]=$!
done
cleanup() {
  for n in $HOSP; do kill -TERM "${PID[$n]}" 2>/dev/null || true; done
  if [ "${KEEP:-0}" != 1 ]; then for n in $COMPUTE; do kill -TERM "${PID[$n]}" 2>/dev/null || true; done; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
export TESSERA_PROFILE="$W/analyst-1.toml"
url() { grep '^url' "$W/$1/admin.toml" | cut -d'"' -f2; }
token() { grep '^token' "$W/$1/admin.toml" | cut -d'"' -f2; }
for n in $COMPUTE $HOSP; do   # (the nodes take a few seconds to start)
  for _ in $(seq 600); do curl -sfk "$(url "$n")/health" > /dev/null && break; sleep 0.2; done
done

# 6. the analyst submits to c1; each hospital's node stops once its shares are sent
ID=$(tessera job submit "$W/meta-analysis.toml")
echo "job $ID submitted to c1"
# (`tessera job status ID -p HOSPITAL/admin.toml` shows it; here polled with curl, one process for all)
left="$HOSP"
while [ -n "$left" ]; do
  next=""
  for h in $left; do
    view=$(curl -sfk -H "Authorization: Bearer $(token "$h")" "$(url "$h")/v1/jobs/$ID" || true)
    if echo "$view" | grep -q '"state":"contributed"'; then
      kill -TERM "${PID[$h]}"
    elif echo "$view" | grep -qE '"state":"(aborted|failed|denied|cancelled)"'; then
      echo "job $ID ended at $h: $view" >&2; exit 1
    else
      next="$next $h"
    fi
  done
  left=$(echo $next)
  [ -n "$left" ] && sleep 0.3
done
echo "all $N hospital nodes have sent their shares and stopped"
tessera job wait "$ID"
tessera job result "$ID" --json
