// read-snapshot.mjs SNAPSHOT REPORT_SQL BATSTAT_JSON: opens a batstat snapshot read-only
// with the DuckDB Node.js client, runs a report's SQL with no filter, prints its rows and
// compares them, cell by cell, with batstat's JSON of the same report. Exit status 1 when
// they differ. scripts/snapshot-node.sh installs the client and runs it.
import { readFileSync } from 'node:fs';
import { DuckDBInstance, version } from '@duckdb/node-api';

const [snapshot, sqlFile, batstatFile] = process.argv.slice(2);
if (!batstatFile) {
  console.error('usage: node read-snapshot.mjs SNAPSHOT REPORT_SQL BATSTAT_JSON');
  process.exit(2);
}

const instance = await DuckDBInstance.create(snapshot, { access_mode: 'READ_ONLY' });
const conn = await instance.connect();
console.log(`DuckDB ${version()} (Node.js client), ${snapshot} opened read-only`);

// The report file's header says how to bind its parameters outside batstat.
const sql = readFileSync(sqlFile, 'utf8').trim().replace(/;$/, '');
await conn.run(`PREPARE report AS ${sql}`);
const reader = await conn.runAndReadAll(
  'EXECUTE report(campaigns := []::VARCHAR[], since := NULL, until := NULL)');
const got = reader.getRowObjectsJson();
console.table(got);

// Read-only: the client cannot write to the snapshot.
try {
  await conn.run('CREATE TABLE written_by_node (i INTEGER)');
  console.error('the snapshot took a CREATE TABLE: it is not read-only');
  process.exit(1);
} catch (e) {
  console.log(`read-only: ${String(e.message).split('\n')[0]}`);
}
conn.closeSync();
instance.closeSync();

// BIGINT comes as a string from the client, as a number from batstat: compare as numbers
// whatever both read as numbers, as text the rest.
const same = (a, b) => {
  if (a === null || b === null) return a === b;
  const x = Number(a), y = Number(b);
  if (typeof a !== 'boolean' && !Number.isNaN(x) && !Number.isNaN(y) && String(a) !== '' && String(b) !== '') return x === y;
  return String(a) === String(b);
};
const want = JSON.parse(readFileSync(batstatFile, 'utf8'));
const diffs = [];
if (got.length !== want.length) diffs.push(`${got.length} rows, batstat has ${want.length}`);
want.forEach((row, i) => {
  for (const [col, v] of Object.entries(row)) {
    if (!got[i] || !same(got[i][col], v)) diffs.push(`row ${i + 1} ${col}: ${got[i]?.[col]}, batstat ${v}`);
  }
});
if (diffs.length > 0) {
  console.error(`differs from batstat:\n  ${diffs.join('\n  ')}`);
  process.exit(1);
}
console.log(`the same as batstat's report: ${want.length} rows, ${Object.keys(want[0] ?? {}).length} columns`);
