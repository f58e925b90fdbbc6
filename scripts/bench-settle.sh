#!/usr/bin/env bash
# bench-settle.sh: the settling simulation. Over one simulated hour of a long-tailed campaign
# (30% final at once, the rest log-normal around 10 s up to 5 minutes, 4% never), how many
# calls per message and how stale (seconds from final at the API to stored) are:
#   fetch --watch, with the default schedule and with --min-interval 10s;
#   a poll of every pending message every 5 s (the provider's example clients);
#   fetch --refresh pending run every minute from cron.
# The whole pipeline (CSV, DuckDB file, pool, token bucket, writer) runs against the fake API
# under testing/synctest, in memory: the figures are exact and the same on every run; only
# the "real" column (the CPU time the simulation took) varies.
#
#   scripts/bench-settle.sh            # 2,000 messages
#   N=500 scripts/bench-settle.sh      # fewer
set -euo pipefail
cd "$(dirname "$0")/.."

BATSTAT_SETTLE_SIM=1 BATSTAT_SETTLE_SIM_N=${N:-2000} \
  go test ./ingest -run '^TestSettleSimulation$' -count 1 -v -timeout 60m |
  grep -E '^settle-sim:|^(ok|FAIL|---)' | sed 's/^settle-sim: //'
