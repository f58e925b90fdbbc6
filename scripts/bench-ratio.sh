#!/usr/bin/env bash
# bench-ratio.sh: `batstat fetch` against a bare Go HTTP client (scripts/bareclient), each
# asking a fake API in a process of its own (`batstat mock-server`, as a user's API is) for
# the statuses of N message IDs (default 50,000) with no latency, in ROUNDS interleaved
# rounds (default 5): in each, the bare client, then the fetch, each against a fresh server
# (the fake's answers move along as a message is asked again).
#
#   scripts/bench-ratio.sh                              # 50,000 IDs, 32 workers, 5 rounds
#   ROUNDS=3 N=20000 scripts/bench-ratio.sh
#   FETCH_FLAGS='--threads 1' scripts/bench-ratio.sh    # flags added to the fetch
#   FETCH_ENV='GOGC=200' scripts/bench-ratio.sh         # environment of the fetch alone
#   KEEP=1 scripts/bench-ratio.sh                       # keep the work directory (logs)
#   BASELINE=/tmp/batstat-old scripts/bench-ratio.sh    # also that build's fetch, each round
#
# With BASELINE (a batstat binary built from an earlier commit), every round also runs
# that binary's fetch after this tree's, so that a change is measured against what it
# changed in the same minutes ("base/s", "base-ratio", "base-cpu"); BASELINE_FLAGS, when
# set, replaces FETCH_FLAGS for it (BASELINE=its own build compares two settings). The
# last line gives the two builds' quotients round by round (fetch/s, CPU per status),
# which the machine's load moves far less than the rates themselves.
# The fetch's statuses/s is the answers it stored over its run's elapsed time (the
# "fetch finished" line: the CSV load, every request and the last commit; not opening or
# closing the database). "wall" is the same over the whole process, exit included. cpu
# is the fetch process's user+system CPU time per status, which a busy machine inflates
# much less than it does statuses/s. Needs GNU time as /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50000}
ROUNDS=${ROUNDS:-5}
CONCURRENCY=${CONCURRENCY:-32}
FETCH_FLAGS=${FETCH_FLAGS:-}
FETCH_ENV=${FETCH_ENV:-}

if [[ ! -x /usr/bin/time ]]; then
  echo "bench-ratio: /usr/bin/time (GNU time) is missing: apt-get install -y time" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-ratio.XXXXXX")
server_pid=
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
cleanup() {
  stop_server
  if [[ -z ${KEEP:-} ]]; then rm -rf "$work"; else echo "work directory kept: $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== build"
go build -o "$work/batstat" ./cmd/batstat
go build -o "$work/bareclient" ./scripts/bareclient

awk -v n="$N" 'BEGIN {
  print "messageId,campaign,phone,sent_at"
  for (i = 0; i < n; i++)
    printf "msg-%09d-7f3a9c,spring-%d,+38050%07d,2025-03-01T10:%02d:00Z\n", i, i % 5, i, i % 60
}' >"$work/ids.csv"

# start_server starts a fresh mock server on a free port and sets addr.
start_server() {
  # Emptied here, not by the redirection below, which the child makes when it gets to it:
  # until then the last server's address would still be read.
  : >"$work/server.log"
  "$work/batstat" mock-server --listen 127.0.0.1:0 2>>"$work/server.log" &
  server_pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's|.*listening on \(http://[0-9.:]*\).*|\1|p' "$work/server.log")
    [[ -n $addr ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench-ratio: mock server did not start" >&2
  cat "$work/server.log" >&2
  exit 1
}

# fetch BIN LOG FLAGS: one fetch by BIN with FLAGS into a fresh database against a fresh server; prints
# "statuses/s wall-statuses/s cpu-µs/status rss-MiB".
fetch() {
  start_server
  rm -f "$work/bench.duckdb" "$work/bench.duckdb.wal"
  local status=0
  # shellcheck disable=SC2086 # FETCH_ENV and the flags are lists
  env $FETCH_ENV /usr/bin/time -v -o "$work/time.log" \
    "$1" fetch --db "$work/bench.duckdb" --api-url "$addr" --api-key test-key \
    --rate 0 --concurrency "$CONCURRENCY" --no-progress --snapshot-every 0 $3 "$work/ids.csv" \
    2>"$2" || status=$?
  stop_server
  if [[ $status -ne 0 ]]; then
    echo "bench-ratio: fetch exited $status" >&2
    tail -5 "$2" >&2
    exit 1
  fi
  local line answered elapsed wall cpu rss_kb
  line=$(grep 'fetch finished' "$2")
  answered=$(sed -n 's/.* answered=\([0-9]*\).*/\1/p' <<<"$line")
  elapsed=$(sed -n 's/.* elapsed_s=\([0-9.]*\).*/\1/p' <<<"$line")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/time.log")
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$work/time.log")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.log")
  awk -v a="$answered" -v e="$elapsed" -v w="$wall" -v c="$cpu" -v m="$rss_kb" \
    'BEGIN { printf "%.0f %.0f %.1f %.0f\n", a / e, a / w, c / a * 1e6, m / 1024 }'
}

echo "== $ROUNDS rounds of $N IDs, concurrency $CONCURRENCY${FETCH_FLAGS:+, fetch flags: $FETCH_FLAGS}${FETCH_ENV:+, fetch env: $FETCH_ENV}"
header='%-6s %9s %9s %12s %8s %10s %8s'
[[ -n ${BASELINE:-} ]] && header+=' %9s %10s %9s'
# shellcheck disable=SC2059 # the format is built above
printf "$header\n" round bare/s fetch/s fetch-wall/s ratio cpu-µs/st rss-MiB base/s base-ratio base-cpu
: >"$work/rounds"
for r in $(seq "$ROUNDS"); do
  start_server
  bare=$("$work/bareclient" -url "$addr" -key test-key -concurrency "$CONCURRENCY" "$work/ids.csv" |
    sed -n 's|.* = \([0-9.]*\) statuses/s.*|\1|p')
  stop_server
  read -r rate wallrate cpu rss < <(fetch "$work/batstat" "$work/fetch.$r.log" "$FETCH_FLAGS")
  [[ -n $rate ]] || exit 1
  base=
  if [[ -n ${BASELINE:-} ]]; then
    read -r brate _ bcpu _ < <(fetch "$BASELINE" "$work/base.$r.log" "${BASELINE_FLAGS-$FETCH_FLAGS}")
    [[ -n $brate ]] || exit 1
    base="$brate $bcpu"
  fi
  awk -v r="$r" -v b="$bare" -v f="$rate" -v w="$wallrate" -v c="$cpu" -v m="$rss" -v base="$base" 'BEGIN {
    printf "%-6s %9.0f %9.0f %12.0f %8.3f %10.1f %8.0f", r, b, f, w, f / b, c, m
    if (split(base, x, " ") == 2) printf " %9.0f %10.3f %9.1f", x[1], x[1] / b, x[2]
    printf "\n"
  }' | tee -a "$work/rounds"
done
awk '{ b[NR] = $2; f[NR] = $3; q[NR] = $5; c[NR] = $6; m[NR] = $7; x[NR] = $8; y[NR] = $9; z[NR] = $10 }
  function med(v, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  END {
    n = NR
    # The two builds met the same minutes in each round: their quotient per round is
    # steadier than either rate, which other work on the machine moves by up to 2x. Taken
    # before med, which sorts its array in place.
    for (i = 1; i <= n; i++) if (x[i] != "") { p[i] = f[i] / x[i]; pc[i] = c[i] / z[i] }
    printf "median: bare %.0f/s, fetch %.0f/s, ratio %.3f, fetch CPU %.1f µs/status, peak RSS %.0f MiB\n", med(b, n), med(f, n), med(q, n), med(c, n), med(m, n)
    if (x[1] != "") {
      printf "median baseline: fetch %.0f/s, ratio %.3f, CPU %.1f µs/status\n", med(x, n), med(y, n), med(z, n)
      printf "this tree against the baseline, round by round: fetch/s %.3f, CPU per status %.3f (medians of the quotients)\n", med(p, n), med(pc, n)
    }
  }' "$work/rounds"
