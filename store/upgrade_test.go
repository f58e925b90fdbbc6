package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batstat/batstat/store"
)

// holdEnv makes the test binary a helper process that holds the file it names open
// read-only (see holdReadOnly).
const holdEnv = "BATSTAT_STORE_TEST_HOLD"

func TestMain(m *testing.M) {
	snapshotHelper()
	if path := os.Getenv(holdEnv); path != "" {
		if err := holdOpen(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if path := os.Getenv(spillEnv); path != "" {
		if err := spillAndSum(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdOpen opens path read-only, says "ready" on stdout and keeps the file open until its
// stdin ends: another process, as an analyst's DuckDB CLI would be.
func holdOpen(path string) error {
	db, err := sql.Open("duckdb", path+"?access_mode=READ_ONLY")
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		return err
	}
	fmt.Println("ready")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// holdReadOnly starts a process that holds path open read-only until the test ends.
func holdReadOnly(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("the process holding %s: %v", path, err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the process holding %s said %q, %v; want ready", path, line, err)
	}
}

// schemaVersionOf reads the schema version of the file at path without store.
func schemaVersionOf(t *testing.T, path string) string {
	t.Helper()
	raw, err := sql.Open("duckdb", path+"?access_mode=READ_ONLY")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v string
	if err := raw.QueryRow(`SELECT value FROM batstat_meta WHERE key = 'schema_version'`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A read-write open brings a schema-2 file (before the macros) up to date, rows kept.
func TestOpenUpgradesSecondSchema(t *testing.T) {
	db, err := store.Open(context.Background(), oldFile(t, 2), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkUpToDate(t, db)
}

// A schema-3 file (before pushed statuses) gains status_checks.source, every row it had
// being a poll, received_at and webhook_positions; its rows are kept, and a pushed row
// (no run, HTTP status or attempts) can be stored in it. The new columns line up in
// status_checks and status_latest, as the writers' INSERT ... SELECT * need.
func TestOpenUpgradesThirdSchema(t *testing.T) {
	path := oldFile(t, 3)
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO status_checks (message_id, run_id, checked_at, http_status, deliverystatus, cost, attempts, raw)
		VALUES ('m1', 1, '2026-01-02 03:04:07+00', 200, 'delivered', 0.05, 1, '{}')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkUpToDate(t, db)
	var got string
	if err := db.QueryRow(`SELECT message_id || ':' || source || ':' || coalesce(received_at::VARCHAR, 'null') || ':' || cost
		FROM status_checks`).Scan(&got); err != nil || got != "m1:poll:null:0.050000" {
		t.Errorf("the polled row after the upgrade = %q (%v), want m1:poll:null:0.050000", got, err)
	}
	if err := db.QueryRow(`SELECT string_agg(source, ',') FROM status_latest`).Scan(&got); err != nil || got != "poll" {
		t.Errorf("status_latest.source after the upgrade = %q (%v), want poll", got, err)
	}
	if _, err := db.Exec(`
		INSERT INTO status_checks (message_id, checked_at, deliverystatus, source, received_at)
		VALUES ('m2', '2026-01-02 03:05:00+00', 'processing', 'webhook', '2026-01-02 03:05:01+00');
		INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM status_checks WHERE message_id = 'm2';
		SELECT count(*) FROM webhook_positions;`); err != nil {
		t.Fatalf("a pushed row in the upgraded file: %v", err)
	}
	var cols [2]string
	for i, table := range []string{"status_checks", "status_latest"} {
		if err := db.QueryRow(`SELECT string_agg(column_name, ',' ORDER BY column_index) FROM duckdb_columns()
			WHERE table_name = $1 AND column_name <> 'raw'`, table).Scan(&cols[i]); err != nil {
			t.Fatal(err)
		}
	}
	if cols[0] != cols[1] || !strings.HasSuffix(cols[0], ",source,received_at") {
		t.Errorf("columns: status_checks %s, status_latest %s; want the same, ending in source,received_at", cols[0], cols[1])
	}
	if err := db.QueryRow(`SELECT string_agg(message_id || ':' || coalesce(deliverystatus, '-'), ',' ORDER BY message_id) FROM message_status`).Scan(&got); err != nil || got != "m1:delivered,m2:processing" {
		t.Errorf("message_status = %q (%v), want m1:delivered,m2:processing", got, err)
	}
}

// A report opens the file read-only; one of an older schema lacks the macros the reports
// use, so it is brought up to date first, and the open is still read-only.
func TestReadOnlyOpenUpgradesOlderSchema(t *testing.T) {
	for _, version := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			db, err := store.Open(context.Background(), oldFile(t, version), store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			checkUpToDate(t, db)
			if _, err := db.Exec(`INSERT INTO batstat_meta VALUES ('x', 'y')`); err == nil {
				t.Error("the read-only open of an upgraded file accepted an INSERT")
			}
		})
	}
}

// When another process has the older file open, it cannot be upgraded: the read-only open
// fails with an error that says why and what to do, and leaves the file as it was.
func TestReadOnlyOpenOfHeldOlderSchemaFails(t *testing.T) {
	path := oldFile(t, 2)
	holdReadOnly(t, path)
	db, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
	if err == nil {
		db.Close()
		t.Fatal("a read-only open of a held schema-2 file succeeded")
	}
	t.Logf("Open: %v", err)
	var oe *store.OutdatedError
	if !errors.As(err, &oe) || oe.Version != 2 || !store.IsLocked(err) {
		t.Errorf("Open = %v, want an OutdatedError of version 2 that IsLocked", err)
	}
	for _, want := range []string{filepath.Base(path), "schema version 2", "another process (PID", "run the command again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error = %q, want it to say %q", err, want)
		}
	}
	if v := schemaVersionOf(t, path); v != "2" {
		t.Errorf("schema_version after the failed upgrade = %s, want 2", v)
	}
}

// A DuckDB file that batstat did not make is read as it is, never given batstat's tables.
func TestReadOnlyOpenLeavesForeignFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.duckdb")
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE sales (amount INTEGER); INSERT INTO sales VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables string
	if err := db.QueryRow(`SELECT string_agg(table_name, ',') FROM duckdb_tables()`).Scan(&tables); err != nil || tables != "sales" {
		t.Errorf("tables of a foreign file after a read-only open = %q (%v), want sales", tables, err)
	}
}
