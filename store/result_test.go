package store_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// TestResultTableSpills checks that a result table stays within memory_limit, the rest
// moved to the temp directory, which a read-only open keeps for itself.
func TestResultTableSpills(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	db, path := readOnly(t, store.Options{MemoryLimit: "16MB", Threads: 2})
	var dir string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('temp_directory')").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != tmp {
		t.Errorf("temp_directory of a read-only open of %s = %s, want a directory in TMPDIR %s", path, dir, tmp)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("temp_directory %s: %v, %v; want a directory only its owner can read", dir, fi, err)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	table, err := store.NewResultTable(ctx, conn, spillQuery, 2)
	if err != nil {
		t.Fatal(err)
	}
	var inMemory, spilled int64
	if err := conn.QueryRowContext(ctx, `SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes)
		FROM duckdb_memory()`).Scan(&inMemory, &spilled); err != nil {
		t.Fatal(err)
	}
	if inMemory > 16<<20 || spilled == 0 {
		t.Errorf("a result of about 36 MB at memory_limit 16MB: %d bytes in memory, %d in temp files; want at most 16 MiB in memory, the rest spilled", inMemory, spilled)
	}
	if err := table.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	db.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp directory %s after Close: %v, want it removed", dir, err)
	}
}

// spillQuery makes a result of spillRows rows, about 36 MB, which spills at a memory limit
// of 16MB.
const (
	spillRows  = 600_000
	spillQuery = "SELECT i, md5(i::VARCHAR) AS h FROM range(600000) t(i)"
)

// spillEnv makes the test binary a helper process that spills a result table of the file
// it names and prints the result's checksum (see spillAndSum).
const spillEnv = "BATSTAT_STORE_TEST_SPILL"

// spillAndSum opens path read-only at a memory limit of 16MB, fills a result table with
// spillQuery, reads it back in pages and prints the checksum of its rows.
func spillAndSum(path string) error {
	ctx := context.Background()
	db, err := store.Open(ctx, path, store.Options{ReadOnly: true, MemoryLimit: "16MB", Threads: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	table, err := store.NewResultTable(ctx, conn, spillQuery, 2)
	if err != nil {
		return err
	}
	defer table.Drop(ctx)
	sum := sha256.New()
	for from := int64(0); from < table.Len(); from += 50_000 {
		rows, err := table.Page(ctx, from, 50_000)
		if err != nil {
			return err
		}
		var i int64
		var h string
		for rows.Next() {
			if err := rows.Scan(&i, &h); err != nil {
				return err
			}
			fmt.Fprintf(sum, "%d,%s\n", i, h)
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	fmt.Printf("%x\n", sum.Sum(nil))
	return nil
}

// TestReadersSpillApart checks that readers of one file that spill at the same time, each
// in its own process, read back their own rows: they would share PATH.tmp, where DuckDB
// names its temp files alike in every process.
func TestReadersSpillApart(t *testing.T) {
	if testing.Short() {
		t.Skip("two processes spill about 50 MB to disk")
	}
	_, path := readOnly(t, store.Options{})
	want := sha256.New()
	for i := range spillRows {
		fmt.Fprintf(want, "%d,%x\n", i, md5sum(fmt.Sprint(i)))
	}
	const readers = 2
	var wg sync.WaitGroup
	got := make([]string, readers)
	errs := make([]error, readers)
	for r := range readers {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), spillEnv+"="+path)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[r] = fmt.Errorf("%v: %s", err, stderr.String())
			}
			got[r], _, _ = strings.Cut(string(out), "\n")
		})
	}
	wg.Wait()
	for r := range readers {
		if errs[r] != nil || got[r] != fmt.Sprintf("%x", want.Sum(nil)) {
			t.Errorf("reader %d of %d spilling at once: checksum %q, %v; want %x", r+1, readers, got[r], errs[r], want.Sum(nil))
		}
	}
}

// md5sum is DuckDB's md5 of s, as bytes.
func md5sum(s string) [16]byte {
	return md5.Sum([]byte(s))
}
