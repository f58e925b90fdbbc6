#!/usr/bin/env bash
# bench-query.sh: peak memory and elapsed time of `batstat query` writing 5,000,000 rows,
# on the reports' benchmark database (10,000,000 status_checks rows; generated the first
# time, about a minute and 1 GB, by the report benchmark's generator).
#
#   scripts/bench-query.sh                                 # csv of 5 narrow columns
#   MEMORY_LIMIT=48MB scripts/bench-query.sh               # the result spilled within 48MB
#   FORMAT=table scripts/bench-query.sh                    # the bounded table
#   QUERY='SELECT * FROM status_checks LIMIT 5000000' scripts/bench-query.sh   # every column
#   BATSTAT_BENCH_DB=/tmp/other.duckdb scripts/bench-query.sh
#
# Needs GNU time as /usr/bin/time (Debian: apt-get install -y time). Prints the bytes
# written, the elapsed time and the maximum resident set size of the query process.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=${BATSTAT_BENCH_DB:-/tmp/batstat-bench.duckdb}
FORMAT=${FORMAT:-csv}
MEMORY_LIMIT=${MEMORY_LIMIT:-}
QUERY=${QUERY:-SELECT message_id, run_id, checked_at, deliverystatus, cost FROM status_checks LIMIT 5000000}

if [[ ! -x /usr/bin/time ]]; then
  echo "bench-query: /usr/bin/time (GNU time) is missing: apt-get install -y time" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-query.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== build"
go build -o "$work/batstat" ./cmd/batstat

if [[ ! -e $DB ]]; then
  echo "== generate $DB"
  BATSTAT_BENCH_DB=$DB go test ./report -run '^$' -bench 'BenchmarkReports/errors$' -benchtime 1x -timeout 30m >/dev/null
fi

limit=()
if [[ -n $MEMORY_LIMIT ]]; then
  limit=(--memory-limit "$MEMORY_LIMIT")
fi
echo "== batstat query ${limit[*]} --format $FORMAT \"$QUERY\""
/usr/bin/time -v "$work/batstat" query --db "$DB" "${limit[@]}" --format "$FORMAT" "$QUERY" \
  2> >(tee "$work/time.txt" | grep -v '^\s' >&2) | wc -c | awk '{ printf "%d bytes written\n", $1 }'
wait
grep -E 'Elapsed \(wall clock\)|Maximum resident set size|Exit status' "$work/time.txt"
