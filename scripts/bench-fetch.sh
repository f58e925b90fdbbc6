#!/usr/bin/env bash
# bench-fetch.sh: peak memory and elapsed time of a whole `batstat fetch` of N message IDs
# (default 1,000,000) against `batstat mock-server` on loopback, --rate 0, --concurrency 16.
#
#   scripts/bench-fetch.sh                         # 1,000,000 IDs
#   N=200000 scripts/bench-fetch.sh                # fewer IDs
#   FETCH_FLAGS='--memory-limit 256MB --threads 1' scripts/bench-fetch.sh
#   GODEBUG=gctrace=1 scripts/bench-fetch.sh       # the Go heap at each GC (in the log)
#   KEEP=1 scripts/bench-fetch.sh                  # keep the work directory
#   FETCH_FLAGS='--snapshot-every 10s --log-level debug' scripts/bench-fetch.sh
#                                                  # what snapshots cost (see BENCHMARKS.md)
#
# Needs GNU time as /usr/bin/time (Debian: apt-get install -y time). Prints the fetch
# summary, the elapsed time and the maximum resident set size of the fetch process (the
# mock server runs in a process of its own and is not counted), and the sampled peaks of
# its two parts: anonymous memory, and the pages mapped from files (mostly the binary's).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
CONCURRENCY=${CONCURRENCY:-16}
FETCH_FLAGS=${FETCH_FLAGS:-}

if [[ ! -x /usr/bin/time ]]; then
  echo "bench-fetch: /usr/bin/time (GNU time) is missing: apt-get install -y time" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-fetch.XXXXXX")
server_pid=
time_pid=
cleanup() {
  # The fetch runs in the background, where an interrupt does not reach it: stop it here.
  if [[ -n $time_pid ]] && kill -0 "$time_pid" 2>/dev/null; then
    pkill -TERM -P "$time_pid" 2>/dev/null || true
    wait "$time_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -z ${KEEP:-} ]]; then
    rm -rf "$work"
  else
    echo "work directory kept: $work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== build"
go build -o "$work/batstat" ./cmd/batstat

echo "== generate $N IDs"
awk -v n="$N" 'BEGIN {
  print "messageId,campaign,phone,sent_at"
  for (i = 0; i < n; i++)
    printf "msg-%09d-7f3a9c,spring-%d,+38050%07d,2025-03-01T10:%02d:00Z\n", i, i % 5, i, i % 60
}' >"$work/ids.csv"
ls -l "$work/ids.csv" | awk '{ printf "%s bytes\n", $5 }'

echo "== start mock server"
# Port 0: the kernel picks a free port, which the server prints.
"$work/batstat" mock-server --listen 127.0.0.1:0 2>"$work/server.log" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's|.*listening on \(http://[0-9.:]*\).*|\1|p' "$work/server.log")
  [[ -n $addr ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
[[ -n $addr ]] || { echo "bench-fetch: mock server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
echo "$addr"

echo "== fetch (concurrency $CONCURRENCY, rate 0${FETCH_FLAGS:+, $FETCH_FLAGS})"
status=0
# shellcheck disable=SC2086 # FETCH_FLAGS is a list of flags
/usr/bin/time -v -o "$work/time.log" \
  "$work/batstat" fetch --db "$work/bench.duckdb" --api-url "$addr" --api-key test-key \
  --rate 0 --concurrency "$CONCURRENCY" --no-progress $FETCH_FLAGS "$work/ids.csv" \
  2>"$work/fetch.log" &
time_pid=$!
# The resident set has two parts that GNU time does not tell apart: anonymous memory (the
# Go heap, DuckDB's buffers and allocators) and pages mapped from files: the binary's code
# and read-only data (most of it DuckDB's), and the shared libraries, which the kernel maps
# in as they run and may drop at any time. Sampled every 100 ms, so a shorter peak can be
# missed.
fetch_pid=
for _ in $(seq 50); do
  fetch_pid=$(pgrep -P "$time_pid" || true)
  [[ -n $fetch_pid ]] && break
  sleep 0.02
done
: >"$work/rss.samples"
while [[ -n $fetch_pid ]] && kill -0 "$fetch_pid" 2>/dev/null; do
  awk '/^(RssAnon|RssFile):/ { printf "%s %s ", $1, $2 } END { print "" }' "/proc/$fetch_pid/status" \
    >>"$work/rss.samples" 2>/dev/null || true
  sleep 0.1
done
wait "$time_pid" || status=$?

grep -E 'level=(WARN|ERROR)|fetch finished|inputs loaded' "$work/fetch.log" || true
# Snapshots (logged at debug level while the run goes, at info level at its end): how many,
# how long each held the writes off (the checkpoint is part of it) and how long each took,
# in ms (median, max, total).
snapshot_stat() { # FIELD: the field's values in ms, one a line
  grep 'msg="snapshot published"' "$work/fetch.log" | sed -n "s/.* $1=\([0-9.]*\)\([µm]*s\).*/\1 \2/p" |
    awk '{ v = $1; if ($2 == "µs") v /= 1000; else if ($2 == "s") v *= 1000; printf "%.1f\n", v }' | sort -n
}
snapshots=$(grep -c 'msg="snapshot published"' "$work/fetch.log" || true)
if [[ $snapshots -gt 0 ]]; then
  for field in writes_held checkpoint took; do
    snapshot_stat "$field" | awk -v f="$field" '{ v[NR] = $1; t += $1 }
      END { printf "snapshots %s: %d, median %.1f ms, max %.1f ms, total %.1f ms\n", f, NR, v[int((NR + 1) / 2)], v[NR], t }'
  done
  grep 'msg="snapshot published"' "$work/fetch.log" | tail -1 | sed -n 's/.* bytes=\([0-9]*\).*/last snapshot: \1 bytes/p'
fi
if [[ -n ${GODEBUG:-} ]]; then
  echo "-- GODEBUG output (last 5 lines of $(grep -c '^gc ' "$work/fetch.log" || true) GCs)"
  grep '^gc ' "$work/fetch.log" | tail -5 || true
fi
echo "exit status: $status"
echo "database: $(du -h "$work/bench.duckdb" | cut -f1)"
grep -E 'Elapsed \(wall clock\)|Maximum resident set size|User time|System time' "$work/time.log" | sed 's/^\t*//'
rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.log")
echo "peak RSS: $((rss_kb / 1024)) MiB"
awk '$1 == "RssAnon:" { n++; if ($2 > a) a = $2; if ($4 > f) f = $4 }
  END { if (n) printf "sampled peaks: anonymous %d MiB, mapped from files %d MiB (%d samples)\n", a / 1024, f / 1024, n }' \
  "$work/rss.samples"
exit "$status"
