package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batstat/batstat/store"
	_ "github.com/duckdb/duckdb-go/v2"
)

func TestOpenCreatesSchemaIdempotently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.duckdb")
	for i := range 2 {
		db, err := store.Open(ctx, path, store.Options{Threads: 1, MemoryLimit: "512MB"})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		for _, table := range []string{"messages", "status_checks", "runs", "fetch_errors", "rejected_rows", "message_status"} {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
				t.Errorf("open %d: %s: %v", i, table, err)
			}
		}
		var v string
		if err := db.QueryRow(`SELECT value FROM batstat_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != fmt.Sprint(store.SchemaVersion) {
			t.Errorf("schema_version = %q, %v; want %d", v, err, store.SchemaVersion)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenErrorsNameTheFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.duckdb")
	os.WriteFile(junk, []byte(strings.Repeat("not a database ", 500)), 0o644)
	tests := []struct {
		name string
		path string
		opts store.Options
		want string
	}{
		{"not a database", junk, store.Options{}, "junk.duckdb"},
		{"read-only and absent", filepath.Join(dir, "absent.duckdb"), store.Options{ReadOnly: true}, "absent.duckdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(ctx, tt.path, tt.opts)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%s) = %v, want the file named", tt.path, err)
			}
		})
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ro.duckdb")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := store.Open(ctx, path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Exec(`INSERT INTO batstat_meta VALUES ('x', 'y')`); err == nil {
		t.Error("a read-only open accepted an INSERT")
	}
}

// A file made by the first schema (messages keyed by a PRIMARY KEY, runs without loading)
// is brought up to date on a read-write open with every row kept.
func TestOpenUpgradesFirstSchema(t *testing.T) {
	ctx := context.Background()
	path := oldFile(t, 1)
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys int
	if err := db.QueryRow(`SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'messages' AND constraint_type = 'PRIMARY KEY'`).Scan(&keys); err != nil || keys != 0 {
		t.Errorf("messages has %d primary keys (%v), want none", keys, err)
	}
	checkUpToDate(t, db)
	var loading sql.NullBool
	if err := db.QueryRow(`SELECT loading FROM runs WHERE run_id = 1`).Scan(&loading); err != nil || !loading.Valid || loading.Bool {
		t.Errorf("runs.loading of a first-schema run = %v (%v), want false", loading, err)
	}
	if _, err := db.Exec(`INSERT INTO messages (message_id, campaign, first_loaded_at) VALUES ('m3', NULL, now())`); err == nil {
		t.Errorf("messages took a NULL campaign after the upgrade")
	}
}

// oldFile makes a database file with the frozen schema of the given version
// (testdata/schema_vN.sql), holding one run and two messages, one of them answered.
func oldFile(t *testing.T, version int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.duckdb", version))
	schema, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("schema_v%d.sql", version)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{string(schema), `
		INSERT INTO runs (started_at, finished_at, outcome) VALUES ('2026-01-02 03:04:05+00', '2026-01-02 03:05:00+00', 'ok');
		INSERT INTO messages (message_id, campaign, first_loaded_at, run_id) VALUES
			('m1', 'spring', '2026-01-02 03:04:06+00', 1), ('m2', 'spring', '2026-01-02 03:04:06+00', 1);
		INSERT INTO status_latest (message_id, run_id, checked_at, http_status, deliverystatus, attempts)
			VALUES ('m1', 1, '2026-01-02 03:04:07+00', 200, 'delivered', 1);`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("make a schema-%d file: %v", version, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkUpToDate fails unless db, made by oldFile, has the current schema with its rows
// and macros.
func checkUpToDate(t *testing.T, db *store.DB) {
	t.Helper()
	var got string
	if err := db.QueryRow(`SELECT string_agg(message_id || ':' || coalesce(deliverystatus, '-'), ',' ORDER BY message_id) FROM message_status`).Scan(&got); err != nil || got != "m1:delivered,m2:-" {
		t.Errorf("message_status = %q (%v), want m1:delivered,m2:-", got, err)
	}
	if err := db.QueryRow(`SELECT string_agg(message_id, ',' ORDER BY message_id) FROM message_status
		WHERE is_terminal(deliverystatus) AND in_campaigns(campaign, ['spring'])
		  AND in_period(message_time(sent_at, first_loaded_at), NULL, NULL)`).Scan(&got); err != nil || got != "m1" {
		t.Errorf("messages selected with the macros = %q (%v), want m1", got, err)
	}
	var v string
	if err := db.QueryRow(`SELECT value FROM batstat_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != fmt.Sprint(store.SchemaVersion) {
		t.Errorf("schema_version = %q, %v; want %d", v, err, store.SchemaVersion)
	}
}

// A memory limit Open accepts is one DuckDB takes; anything else is refused before DuckDB
// sees it.
func TestMemoryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.duckdb")
	for _, ok := range []string{"96MB", "1 GB", "1.5GiB", "500mib", "2tb", "64000KB", "100000000B"} {
		if err := store.CheckMemoryLimit(ok); err != nil {
			t.Errorf("CheckMemoryLimit(%q) = %v, want nil", ok, err)
			continue
		}
		db, err := store.Open(context.Background(), path, store.Options{MemoryLimit: ok})
		if err != nil {
			t.Errorf("Open with memory limit %q: %v", ok, err)
			continue
		}
		db.Close()
	}
	for _, bad := range []string{"lots", "1000000", "0GB", "0.0 MB", "-1GB", "1G", "80%", "1e3MB", "GB"} {
		if err := store.CheckMemoryLimit(bad); err == nil {
			t.Errorf("CheckMemoryLimit(%q) = nil, want an error", bad)
		}
		if _, err := store.Open(context.Background(), path, store.Options{MemoryLimit: bad}); err == nil || strings.Contains(err.Error(), "driver") {
			t.Errorf("Open with memory limit %q = %v, want batstat's error, not DuckDB's", bad, err)
		}
	}
}
