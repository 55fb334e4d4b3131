#!/usr/bin/env bash
# The README's three-organisation walkthrough, with the tessera command only.
#   bash examples/consortium/walkthrough.sh [DIR]      (BASE_PORT=18400, KEEP=1 leaves the nodes running)
# Locally, one person plays every organisation; in a deployment each organisation runs its own
# steps on its own machine and only party.toml files and the contract travel between them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${1:-consortium}
BASE=${BASE_PORT:-18400}
NODES="alpha beta gamma trusted_dealer"
mkdir -p "$W"

# 1. data and the consortium's terms (each organisation's data stays in its own directory)
tessera node example "$W" --data-only --rows "${ROWS:-30000}"

# 2. every organisation sets up its node: identity, API certificate, data sources
i=0
for org in alpha beta gamma; do
  extra=()
  [ "$org" = alpha ] && extra=(--dataset "cust_alpha=$W/data/cust_alpha.csv")
  [ "$org" = beta ] && extra=(--dataset "fraud_beta=$W/data/fraud_beta.csv")
  tessera node init "$W/$org" --name "$org" --api-port $((BASE + 40 * i)) \
    --mpc-ports $((BASE + 40 * i + 1))-$((BASE + 40 * i + 32)) \
    --dataset "tx_$org=$W/data/tx_$org.csv" --dataset "trial_$org=$W/data/trial_$org.csv" "${extra[@]}"
  i=$((i + 1))
done
tessera node init "$W/trusted_dealer" --name trusted_dealer --dealer --api-port $((BASE + 120)) \
  --mpc-ports $((BASE + 121))-$((BASE + 152))

# 3. the contract: parties from their party.toml, terms agreed; everyone signs; every node gets it
tessera contract init --out "$W/contract.toml" --id consortium-2026 --title "Fraud model and trial meta-analysis" \
  --node "$W/alpha" --node "$W/beta" --node "$W/gamma" --node "$W/trusted_dealer" --terms "$W/terms.toml"
for n in $NODES; do tessera contract sign "$W/contract.toml" --identity-dir "$W/$n/keys" --party "$n"; done
tessera contract verify "$W/contract.toml"
for n in $NODES; do cp "$W/contract.toml" "$W/$n/contract.toml"; done

# 4. alpha gives the analyst a token (an access profile: URL, pinned certificate, token)
tessera node add-analyst "$W/alpha" analyst-1 --profile "$W/analyst-1.toml"

# 5. start the four nodes
PIDS=()
for n in $NODES; do
  tessera node start "$W/$n" > "$W/$n.log" 2>&1 &
  PIDS+=($!)
done
if [ "${KEEP:-0}" != 1 ]; then trap 'kill -TERM "${PIDS[@]}" 2>/dev/null; wait' EXIT; fi
export TESSERA_PROFILE="$W/analyst-1.toml"
for _ in $(seq 100); do tessera job list > /dev/null 2>&1 && break; sleep 0.2; done

# 6. the analyst's jobs
MODEL=$(tessera job submit "$HERE/jobs/fraud-model.toml" --wait)
tessera job result "$MODEL" --json   # without --json: statsmodels-like tables
META=$(tessera job submit "$HERE/jobs/meta-analysis.toml" --wait)
tessera job result "$META" --json
VERTICAL=$(tessera job submit "$HERE/jobs/vertical-fraud-model.toml" --wait)
tessera job result "$VERTICAL"
DENIED=$(tessera job submit "$HERE/jobs/forbidden.toml")
tessera job wait "$DENIED" || echo "job $DENIED was denied, as the contract says"
tessera job list
echo "dashboard: $(grep '^url' "$W/alpha/admin.toml" | cut -d'"' -f2)/#token=... (admin token in $W/alpha/admin.toml)"
