package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/store"
)

// readOnly makes an empty batstat database and opens it read-only, as the readers do.
func readOnly(t *testing.T, opts store.Options) (*store.DB, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.duckdb")
	rw, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	opts.ReadOnly = true
	db, err := store.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// readAll reads every row of a result table through pages of n rows, each row as text.
func readAll(t *testing.T, table *store.ResultTable, n int) []string {
	t.Helper()
	var got []string
	for from := int64(0); from < table.Len(); from += int64(n) {
		rows, err := table.Page(context.Background(), from, n)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, scanText(t, rows)...)
	}
	return got
}

// scanText reads rows, each as its values printed with %v and joined by "|"; it closes rows.
func scanText(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestResultTablePages checks that a result table on a read-only database gives back the
// query's rows in the query's order, page after page, whatever the query names its columns.
func TestResultTablePages(t *testing.T) {
	ctx := context.Background()
	db, _ := readOnly(t, store.Options{Threads: 4})
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	tests := []struct {
		name, query string
		columns     int
		page        int
	}{
		// Several row groups (122,880 rows each), filled by parallel threads, in an order
		// that is not the scan's.
		{"ordered, several row groups", "SELECT i, i % 7 AS m FROM range(300000) t(i) ORDER BY m DESC, i", 2, 100_000},
		{"pages smaller than a vector", "SELECT i FROM range(5000) t(i) ORDER BY i DESC", 1, 1000},
		// The table's own names cannot clash: duplicates, and a column named rowid, which
		// would hide the row number the pages are cut by.
		{"a column named rowid", "SELECT 10 - i AS rowid, i AS x, i AS x FROM range(10) t(i)", 3, 3},
		{"comment and semicolon", "SELECT 1 AS a; -- the end", 1, 10},
		{"empty", "SELECT 1 AS a WHERE false", 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := conn.QueryContext(ctx, tt.query)
			if err != nil {
				t.Fatal(err)
			}
			want := scanText(t, rows)
			table, err := store.NewResultTable(ctx, conn, tt.query, tt.columns)
			if err != nil {
				t.Fatalf("NewResultTable(%q) = %v", tt.query, err)
			}
			defer table.Drop(ctx)
			if table.Len() != int64(len(want)) {
				t.Errorf("Len() = %d, want %d", table.Len(), len(want))
			}
			if diff := cmp.Diff(want, readAll(t, table, tt.page)); diff != "" {
				t.Errorf("pages of %d rows differ from the query's rows (-query +pages):\n%s", tt.page, diff)
			}
		})
	}

	// A second table on the connection replaces the first (one a canceled query left);
	// Drop removes it.
	if _, err := store.NewResultTable(ctx, conn, "SELECT 1 AS a", 1); err != nil {
		t.Fatal(err)
	}
	table, err := store.NewResultTable(ctx, conn, "SELECT 'b' AS b, 2 AS c", 2)
	if err != nil {
		t.Fatalf("NewResultTable after another = %v", err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE temporary").Scan(&n); err != nil || n != 1 {
		t.Errorf("temporary tables after two results = %d, %v; want 1", n, err)
	}
	if err := table.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE temporary").Scan(&n); err != nil || n != 0 {
		t.Errorf("temporary tables after Drop = %d, %v; want 0", n, err)
	}
}
