#!/usr/bin/env bash
# bench-webhook.sh: accepted events per second of `batstat webhook serve` on loopback, one
# event per POST, every 200 after its fsync (group commit), at 1, 16 and 64 concurrent
# senders; and the fsyncs per second it took.
#
#   scripts/bench-webhook.sh                 # 3 rounds of 20,000 events per sender count
#   N=50000 ROUNDS=5 scripts/bench-webhook.sh
#   KEEP=1 scripts/bench-webhook.sh          # keep the work directory (spools, logs)
#
# Each round measures two set-ups, one after the other:
#   in-process  BenchmarkReceiver with the receiver in the benchmark's process (no access
#               log); it reports events/s, fsyncs/s and events per fsync itself.
#   binary      the built binary as a process of its own, logging each request at the
#               default level to a file, and the same benchmark as the sender; fsyncs/s
#               from the receiver's closing log line.
# The spools are in $TMPDIR (default /tmp). The senders run on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-20000}
ROUNDS=${ROUNDS:-3}

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-webhook.XXXXXX")
recv_pid=
cleanup() {
  if [[ -n $recv_pid ]]; then
    kill "$recv_pid" 2>/dev/null || true
    wait "$recv_pid" 2>/dev/null || true
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
go test -c -o "$work/webhook.test" ./webhook

bench() { # senders [env...]: prints the benchmark line
  local s=$1
  shift
  (cd webhook && env "$@" "$work/webhook.test" -test.run '^$' -test.bench "^BenchmarkReceiver/senders=$s\$" \
    -test.benchtime "${N}x") | grep '^BenchmarkReceiver'
}

for r in $(seq "$ROUNDS"); do
  for s in 1 16 64; do
    echo "== round $r, $s senders, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'in-process  '
    bench "$s"

    spool="$work/spool-$r-$s"
    # The log exists before the receiver starts: the shell opens it in the background
    # child, which a busy machine may not run before the first look below.
    : >"$work/recv-$r-$s.log"
    "$work/batstat" webhook serve --listen 127.0.0.1:0 --spool "$spool" 2>>"$work/recv-$r-$s.log" &
    recv_pid=$!
    url=
    for _ in $(seq 100); do
      url=$(sed -n 's|.*listening on \(http://[0-9.:]*/[^" ]*\).*|\1|p' "$work/recv-$r-$s.log")
      [[ -n $url ]] && break
      sleep 0.1
    done
    if [[ -z $url ]]; then
      echo "bench-webhook: the receiver did not start:" >&2
      cat "$work/recv-$r-$s.log" >&2
      exit 1
    fi
    line=$(bench "$s" BATSTAT_BENCH_WEBHOOK_URL="$url")
    # The receiver's CPU time (user + system, in clock ticks): on a busy machine, what it
    # costs per event says more than events/s.
    ticks=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$recv_pid/stat")
    kill -TERM "$recv_pid"
    wait "$recv_pid"
    recv_pid=
    stopped=$(grep 'webhook receiver stopped' "$work/recv-$r-$s.log")
    events=$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$stopped")
    fsyncs=$(sed -n 's/.* fsyncs=\([0-9]*\).*/\1/p' <<<"$stopped")
    eps=$(awk '{ for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i }' <<<"$line")
    # The benchmark's first run posts one event more than N; leave it out of the rate.
    awk -v n="$N" -v ev="$events" -v fs="$fsyncs" -v eps="$eps" -v ticks="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
      secs = n / eps
      printf "binary      %.0f events/s, %.1f fsyncs/s, %.2f events/fsync, receiver CPU %.0f µs/event (receiver: %d events, %d fsyncs)\n",
        eps, (fs - 1) / secs, (ev - 1) / (fs - 1), ticks / hz / ev * 1e6, ev, fs
    }'
  done
done
