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
#
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
  "$work/batstat" mock-server --listen 127.0.0.1:0 2>"$work/server.log" &
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

echo "== $ROUNDS rounds of $N IDs, concurrency $CONCURRENCY${FETCH_FLAGS:+, fetch flags: $FETCH_FLAGS}${FETCH_ENV:+, fetch env: $FETCH_ENV}"
printf '%-6s %12s %12s %12s %8s %10s %9s\n' round bare/s fetch/s fetch-wall/s ratio cpu-µs/st rss-MiB
: >"$work/ratios"
for r in $(seq "$ROUNDS"); do
  start_server
  bare=$("$work/bareclient" -url "$addr" -key test-key -concurrency "$CONCURRENCY" "$work/ids.csv" |
    sed -n 's|.* = \([0-9.]*\) statuses/s.*|\1|p')
  stop_server

  start_server
  rm -f "$work/bench.duckdb" "$work/bench.duckdb.wal"
  status=0
  # shellcheck disable=SC2086 # FETCH_ENV and FETCH_FLAGS are lists
  env $FETCH_ENV /usr/bin/time -v -o "$work/time.log" \
    "$work/batstat" fetch --db "$work/bench.duckdb" --api-url "$addr" --api-key test-key \
    --rate 0 --concurrency "$CONCURRENCY" --no-progress --snapshot-every 0 $FETCH_FLAGS "$work/ids.csv" \
    2>"$work/fetch.$r.log" || status=$?
  stop_server
  if [[ $status -ne 0 ]]; then
    echo "bench-ratio: fetch exited $status" >&2
    tail -5 "$work/fetch.$r.log" >&2
    exit 1
  fi
  line=$(grep 'fetch finished' "$work/fetch.$r.log")
  answered=$(sed -n 's/.* answered=\([0-9]*\).*/\1/p' <<<"$line")
  elapsed=$(sed -n 's/.* elapsed_s=\([0-9.]*\).*/\1/p' <<<"$line")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/time.log")
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$work/time.log")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.log")
  awk -v r="$r" -v b="$bare" -v a="$answered" -v e="$elapsed" -v w="$wall" -v c="$cpu" -v m="$rss_kb" 'BEGIN {
    f = a / e
    printf "%-6s %12.0f %12.0f %12.0f %8.3f %10.1f %9.0f\n", r, b, f, a / w, f / b, c / a * 1e6, m / 1024
  }' | tee -a "$work/rounds"
done
awk '{ b[NR] = $2; f[NR] = $3; q[NR] = $5; c[NR] = $6; m[NR] = $7 }
  function med(v, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  END {
    n = NR
    printf "median: bare %.0f/s, fetch %.0f/s, ratio %.3f, fetch CPU %.1f µs/status, peak RSS %.0f MiB\n", med(b, n), med(f, n), med(q, n), med(c, n), med(m, n)
  }' "$work/rounds"
