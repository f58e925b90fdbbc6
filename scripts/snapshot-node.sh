#!/usr/bin/env bash
# snapshot-node.sh: read a batstat snapshot with a program that is not batstat, the DuckDB
# Node.js client (@duckdb/node-api), and check that its delivery report is batstat's.
#
#   scripts/snapshot-node.sh                      # reads batstat.duckdb.snapshot
#   scripts/snapshot-node.sh campaigns.duckdb     # reads campaigns.duckdb.snapshot
#   BATSTAT=./batstat scripts/snapshot-node.sh x.duckdb   # a built batstat (default: built here)
#
# It may run while a fetch holds the database and publishes snapshots. The client opens the
# snapshot read-only, runs queries/delivery.sql (the SQL batstat runs for `report delivery`)
# and compares every cell with `batstat report --db DB.snapshot --format json delivery`.
# Exit status: 0 the same numbers; 1 they differ, or something failed; 77 skipped, because
# node or npm is missing or npm could not install the client (no network): it says which.
#
# The client is installed into a temporary directory, removed at exit; nothing is installed
# globally. Its release 1.5.6-r.N bundles DuckDB v1.5.6, the DuckDB batstat is built with.
set -euo pipefail

NODE_API_VERSION=${NODE_API_VERSION:-1.5.6-r.1}

db=$(realpath -m "${1:-batstat.duckdb}")
snapshot="$db.snapshot"
batstat=${BATSTAT:+$(realpath -m "$BATSTAT")}
cd "$(dirname "$0")/.."

skip() {
  echo "snapshot-node: skipped: $*" >&2
  exit 77
}
command -v node >/dev/null || skip "node is not installed"
command -v npm >/dev/null || skip "npm is not installed"
if [[ ! -f $snapshot ]]; then
  echo "snapshot-node: no snapshot $snapshot (batstat fetch --db $db publishes it)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/snapshot-node.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== install @duckdb/node-api@$NODE_API_VERSION into $work"
if ! npm install --prefix "$work" --no-audit --no-fund --loglevel=error \
  "@duckdb/node-api@$NODE_API_VERSION" >"$work/npm.log" 2>&1; then
  tail -5 "$work/npm.log" >&2
  skip "npm could not install @duckdb/node-api@$NODE_API_VERSION (no network, or no registry?)"
fi

if [[ -z $batstat ]]; then
  echo "== build batstat"
  go build -o "$work/batstat" ./cmd/batstat
  batstat="$work/batstat"
fi

# A running fetch may publish a new snapshot, renamed over this one, at any moment: both
# programs read the snapshot through a hard link made beside it (the same file, which the
# rename cannot take away), or, where no link can be made, through a copy.
pinned="$snapshot.read-$$"
if ln "$snapshot" "$pinned" 2>/dev/null; then
  trap 'rm -f "$pinned"; rm -rf "$work"' EXIT
else
  pinned="$work/read.duckdb"
  cp "$snapshot" "$pinned"
fi
echo "== batstat report --format json delivery (snapshot of $(stat -c %y "$pinned"))"
"$batstat" report --db "$pinned" --format json delivery >"$work/batstat.json"
echo "== the same report through the Node.js client"
cp scripts/read-snapshot.mjs "$work/"
node "$work/read-snapshot.mjs" "$pinned" queries/delivery.sql "$work/batstat.json"
