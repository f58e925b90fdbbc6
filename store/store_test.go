package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batstat/batstat/store"
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
		if err := db.QueryRow(`SELECT value FROM batstat_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != "1" {
			t.Errorf("schema_version = %q, %v; want 1", v, err)
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
