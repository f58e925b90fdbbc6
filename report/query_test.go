package report_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

// readOnlyFixture writes the fixture to a file, closes it (checkpointing it) and reopens
// it read-only, as batstat query does. It returns the database and the file's checksum.
func readOnlyFixture(t *testing.T) (*store.DB, string, [32]byte) {
	t.Helper()
	rw, path := fixtureDB(t)
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, path)
	ro, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return ro, path, sum
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestQueryRefuses checks that every statement that could write a file, the database or a
// setting is refused by its type before it runs: no file appears beside the database, the
// database is unchanged and the session's settings are too.
func TestQueryRefuses(t *testing.T) {
	ctx := context.Background()
	ro, path, before := readOnlyFixture(t)
	dir := filepath.Dir(path)
	out := func(name string) string { return "'" + filepath.Join(dir, name) + "'" }
	count := func() [][]string {
		res, err := report.Query(ctx, ro.DB, `SELECT
			(SELECT count(*) FROM messages) AS messages,
			(SELECT count(*) FROM status_checks) AS checks,
			(SELECT count(*) FROM runs) AS runs,
			(SELECT string_agg(campaign, ',' ORDER BY message_id) FROM messages) AS campaigns,
			current_setting('threads') AS threads,
			current_setting('memory_limit') AS memory_limit,
			current_setting('enable_profiling') AS profiling`)
		if err != nil {
			t.Fatal(err)
		}
		return csvRows(t, res)
	}
	want := count()

	tests := []struct {
		sql     string
		several bool
	}{
		{sql: "COPY (SELECT * FROM messages) TO " + out("copy.csv")},
		{sql: "COPY messages TO " + out("copy2.parquet") + " (FORMAT parquet)"},
		{sql: "EXPORT DATABASE " + out("exported")},
		{sql: "ATTACH " + out("attached.duckdb") + " AS a"},
		{sql: "DETACH batstat"},
		{sql: "INSTALL json"},
		{sql: "LOAD json"},
		{sql: "SET threads = 1"},
		{sql: "SET memory_limit = '1MB'"},
		{sql: "RESET threads"},
		{sql: "PRAGMA memory_limit = '1MB'"},
		{sql: "PRAGMA enable_profiling"},
		{sql: "PRAGMA table_info('runs')"}, // FROM pragma_table_info('runs') does it
		{sql: "SET VARIABLE x = 1"},
		{sql: "CALL checkpoint()"},
		{sql: "CHECKPOINT"},
		{sql: "EXPLAIN ANALYZE COPY (SELECT 1) TO " + out("explained.csv")},
		{sql: "EXPLAIN SELECT 1"},
		{sql: "PREPARE p AS COPY (SELECT 1) TO " + out("prepared.csv")},
		{sql: "INSERT INTO messages (message_id, campaign, first_loaded_at) VALUES ('x', 'x', now())"},
		{sql: "CREATE TABLE scratch (a INTEGER)"},
		{sql: "CREATE TEMP TABLE scratch AS SELECT 1"},
		{sql: "DROP TABLE messages"},
		{sql: "UPDATE messages SET campaign = 'changed'"},
		{sql: "DELETE FROM status_checks"},
		{sql: "BEGIN"},
		{sql: "VACUUM"},
		// More than one statement is refused before any runs, the first one too.
		{sql: "COPY (SELECT 1) TO " + out("first.csv") + "; SELECT 1"},
		{sql: "SELECT 1; DROP TABLE runs"},
		{sql: "SET threads = 1; SELECT 1"},
		{sql: "SELECT 1; SELECT 2", several: true},
		{sql: "PIVOT messages ON campaign USING count(*)"}, // a CREATE TYPE, then the SELECT
	}
	for _, tt := range tests {
		_, err := report.Query(ctx, ro.DB, tt.sql)
		var refused *report.RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("Query(%q) = %v, want a *RefusedError", tt.sql, err)
			continue
		}
		why := "a statement in it is not a query"
		if tt.several {
			why = "several statements"
		}
		msg := err.Error()
		start := tt.sql[:min(len(tt.sql), 20)]
		if !strings.HasPrefix(msg, `query: refused "`+start) || !strings.Contains(msg, why) ||
			!strings.Contains(msg, "the SQL must be one statement that reads: SELECT") || strings.Contains(msg, "\n") {
			t.Errorf("Query(%q) = %q, want one line quoting the SQL, saying %q and what is allowed", tt.sql, msg, why)
		}
	}

	if diff := cmp.Diff(want, count()); diff != "" {
		t.Errorf("contents or settings changed (-before +after):\n%s", diff)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(path) {
			t.Errorf("%s appeared beside the database", e.Name())
		}
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Error("the database file changed while it was open read-only")
	}
}

// allowed are statements that only read and are worth having.
var allowed = []string{
	"SELECT count(*) FROM messages",
	"WITH c AS (SELECT campaign FROM messages) SELECT DISTINCT campaign FROM c",
	"VALUES (1, 'a'), (2, 'b')",
	"FROM runs",
	"TABLE runs",
	"DESCRIBE message_status",
	"DESCRIBE SELECT message_id FROM messages",
	"SHOW TABLES",
	"SHOW ALL TABLES",
	"SUMMARIZE runs",
	"FROM pragma_table_info('status_checks')",
	"SELECT * FROM pragma_database_size()",
	"FROM pragma_version()",
	"SELECT 1 UNION ALL SELECT 2",
	"PIVOT messages ON campaign IN ('spring') USING count(*)",
	"UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b",
	"SELECT current_setting('threads')",
	"SELECT 1;",
}

// TestQueryAllows checks the statements that only read and are worth having: each runs
// and returns rows.
func TestQueryAllows(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	for _, q := range allowed {
		res, err := report.Query(ctx, ro.DB, q)
		if err != nil {
			t.Errorf("Query(%q) = %v, want rows", q, err)
			continue
		}
		if len(res.Rows) == 0 {
			t.Errorf("Query(%q) returned no rows", q)
		}
	}
}

// TestQueryCanceled checks that a query stopped by its context returns the context's
// cause, whether it was stopped before it ran or while DuckDB was running it.
func TestQueryCanceled(t *testing.T) {
	ro, _, _ := readOnlyFixture(t)
	stop := errors.New("stopped by the test")
	const slow = "SELECT count(*) FROM range(10000000000)"

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(stop)
	if _, err := report.Query(ctx, ro.DB, slow); !errors.Is(err, stop) {
		t.Errorf("Query with a canceled context = %v, want an error wrapping the cause", err)
	}

	ctx, cancel = context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() {
		_, err := report.Query(ctx, ro.DB, slow)
		done <- err
	}()
	cancel(stop)
	if err := <-done; !errors.Is(err, stop) || strings.Contains(err.Error(), "INTERRUPT") {
		t.Errorf("Query canceled while it runs = %v, want an error wrapping the cause, not DuckDB's", err)
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	res, err := report.Query(ctx, ro.DB, `SELECT message_id, cost, checked_at, fallbacks, extended_statuses
		FROM message_status WHERE message_id IN ('sp-08', 'sp-07') ORDER BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "query" {
		t.Errorf("Name = %q, want query", res.Name)
	}
	want := []string{"VARCHAR", "DECIMAL(18,6)", "TIMESTAMPTZ", "JSON", "JSON"}
	if diff := cmp.Diff(want, res.Types); diff != "" {
		t.Errorf("Types (-want +got):\n%s", diff)
	}
	var buf strings.Builder
	if err := report.Render(&buf, report.FormatJSON, []*report.Result{res}); err != nil {
		t.Fatal(err)
	}
	wantJSON := `[
  {
    "message_id": "sp-07",
    "cost": null,
    "checked_at": null,
    "fallbacks": null,
    "extended_statuses": null
  },
  {
    "message_id": "sp-08",
    "cost": 0.123456,
    "checked_at": "2025-03-10T10:00:10Z",
    "fallbacks": [
      {
        "status": "delivered",
        "type": "sms"
      },
      {
        "status": "delivered",
        "type": "rcs"
      }
    ],
    "extended_statuses": {
      "sms": "delivered",
      "viber": "expired"
    }
  }
]
`
	if diff := cmp.Diff(wantJSON, buf.String()); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}

	if _, err := report.Query(ctx, ro.DB, "SELECT nope FROM messages"); err == nil || !strings.HasPrefix(err.Error(), "query: ") {
		t.Errorf("Query(bad column) = %v, want a query: error", err)
	}
}

// render writes results with Render, as reports are written.
func render(t *testing.T, format report.Format, res *report.Result) string {
	t.Helper()
	var buf strings.Builder
	if err := report.Render(&buf, format, []*report.Result{res}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// stream writes a query's result with Rows.Render, as batstat query does.
func stream(t *testing.T, db *store.DB, q string, opts report.RenderOptions) (string, report.Rendered) {
	t.Helper()
	return streamWith(t, db, q, report.QueryOptions{}, opts)
}

// streamWith is stream with QueryOptions.
func streamWith(t *testing.T, db *store.DB, q string, qopts report.QueryOptions, opts report.RenderOptions) (string, report.Rendered) {
	t.Helper()
	rows, err := report.QueryRows(context.Background(), db.DB, q, qopts)
	if err != nil {
		t.Fatalf("QueryRows(%q, %+v) = %v", q, qopts, err)
	}
	defer rows.Close()
	var buf strings.Builder
	n, err := rows.Render(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.String(), n
}

// TestRowsRenderLikeRender checks that a streamed result is written exactly as Render
// writes the same result held in memory, in every format, JSON columns, money, times,
// NULLs and an empty result included.
func TestRowsRenderLikeRender(t *testing.T) {
	ro, _, _ := readOnlyFixture(t)
	for _, q := range []string{
		"SELECT * FROM message_status ORDER BY message_id",
		"SELECT * FROM status_checks ORDER BY message_id, checked_at",
		"SELECT 1 AS a WHERE false",
	} {
		res, err := report.Query(context.Background(), ro.DB, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range report.Formats {
			got, n := stream(t, ro, q, report.RenderOptions{Format: f})
			if diff := cmp.Diff(render(t, f, res), got); diff != "" {
				t.Errorf("%s of %q: Rows.Render differs from Render (-Render +Rows.Render):\n%s", f, q, diff)
			}
			if want := int64(len(res.Rows)); n.Rows != want || n.Shown != want {
				t.Errorf("%s of %q: Rendered = %+v, want %d rows, all shown", f, q, n, want)
			}
		}
	}
}

// TestRowsRenderBounded checks the bound of the table formats: a text table shows the
// first rows and counts the others; a markdown table shows every row, those after the
// bound padded to the widths of the first ones, in batches.
func TestRowsRenderBounded(t *testing.T) {
	ro, _, _ := readOnlyFixture(t)
	const q = "SELECT i % 100 AS n, repeat('x', i % 7) AS s FROM range(3000) t(i) ORDER BY i"
	first, err := report.Query(context.Background(), ro.DB, q+" LIMIT 10")
	if err != nil {
		t.Fatal(err)
	}

	got, n := stream(t, ro, q, report.RenderOptions{Format: report.FormatTable, MaxTableRows: 10})
	if want := render(t, report.FormatTable, first); got != want {
		t.Errorf("table of 3000 rows bounded at 10 = \n%s\nwant the table of the first 10:\n%s", got, want)
	}
	if n != (report.Rendered{Rows: 3000, Shown: 10}) {
		t.Errorf("table of 3000 rows bounded at 10: Rendered = %+v, want 3000 rows, 10 shown", n)
	}

	got, n = stream(t, ro, q, report.RenderOptions{Format: report.FormatMarkdown, MaxTableRows: 10})
	if n != (report.Rendered{Rows: 3000, Shown: 3000}) {
		t.Errorf("markdown of 3000 rows: Rendered = %+v, want all shown", n)
	}
	head, _ := strings.CutPrefix(render(t, report.FormatMarkdown, first), "")
	if !strings.HasPrefix(got, head) {
		t.Errorf("markdown of 3000 rows starts with\n%s\nwant the markdown of the first 10 rows:\n%s", got[:min(len(got), len(head))], head)
	}
	lines := strings.Split(strings.TrimSuffix(strings.TrimPrefix(got, "## query\n\n"), "\n"), "\n")
	if len(lines) != 2+3000 {
		t.Fatalf("markdown of 3000 rows has %d lines, want 3002", len(lines))
	}
	for i, line := range lines[2:] {
		// Every row fits the widths of the first ten: the lines all line up.
		cells := strings.Split(line, "|")
		if len(cells) != 4 || strings.TrimSpace(cells[1]) != fmt.Sprint(i%100) ||
			strings.TrimSpace(cells[2]) != strings.Repeat("x", i%7) || len(line) != len(lines[0]) {
			t.Fatalf("markdown line %d = %q, want | %d | %s | as wide as %q", i+3, line, i%100, strings.Repeat("x", i%7), lines[0])
		}
	}

	// A cell wider than the first rows' widens its batch only, still valid markdown.
	got, _ = stream(t, ro, "SELECT repeat('x', i) AS s FROM range(1, 6) t(i)", report.RenderOptions{Format: report.FormatMarkdown, MaxTableRows: 2})
	want := "## query\n\n| s   |\n|:--- |\n| x   |\n| xx  |\n| xxx   |\n| xxxx  |\n| xxxxx |\n"
	if got != want {
		t.Errorf("markdown with wider rows after the bound =\n%s\nwant\n%s", got, want)
	}
}

// TestSpilledLikeDirect checks that a result spilled to a table is written exactly as the
// same result read directly, in every format: the column names and types, the order of
// the rows over several pages and row groups, and the statements that cannot fill a table.
func TestSpilledLikeDirect(t *testing.T) {
	ro, _, _ := readOnlyFixture(t)
	queries := []string{
		"SELECT * FROM message_status ORDER BY message_id",
		"SELECT * FROM status_checks ORDER BY message_id, checked_at",
		"SELECT 1 AS a WHERE false",
		// Names a table could not take: duplicates, rowid, none.
		"SELECT 10 - i AS rowid, i AS x, i AS x, i + 1 FROM range(10) t(i)",
		// Types DuckDB might change in a table: NULL, empty lists and maps, enums, JSON.
		`SELECT NULL AS n, [] AS el, [NULL] AS ln, {'a': NULL} AS sn, MAP {} AS em, 1::UTINYINT AS ut,
			1::HUGEINT AS h, '1 day 02:00:00'::INTERVAL AS iv, 'a\x00'::BLOB AS bl, 1.5::FLOAT AS f,
			TIME '10:00' AS tt, DATE '2020-01-01' AS dd, TIMESTAMP '2020-01-01 10:00' AS ts,
			TIMESTAMP_NS '2020-01-01' AS tns, 1.5::DECIMAL(38,10) AS bigd, [1,2]::INTEGER[2] AS arr,
			'x'::ENUM('x','y') AS e, '{"b":1,"a":[2]}'::JSON AS j, union_value(a := 1) AS u,
			'6b5c2c33-71d6-4a2e-8e33-0d7d3f4d58d1'::UUID AS uu, 0.1::DOUBLE AS d`,
		"SELECT 1 AS a; -- a comment after the statement",
		// Statements that cannot fill a table are read directly.
		"DESCRIBE message_status",
		"SHOW TABLES",
		"SUMMARIZE runs",
		"PIVOT messages ON campaign IN ('spring') USING count(*) ORDER BY message_id",
	}
	for _, q := range allowed {
		// Each runs; their order is not always defined, so only the ordered ones above
		// are compared.
		if _, n := streamWith(t, ro, q, report.QueryOptions{Spill: true}, report.RenderOptions{Format: report.FormatCSV}); n.Rows == 0 {
			t.Errorf("%q spilled has no rows", q)
		}
	}
	compare := func(q string, formats []report.Format) {
		t.Helper()
		for _, f := range formats {
			opts := report.RenderOptions{Format: f}
			want, wantN := stream(t, ro, q, opts)
			got, n := streamWith(t, ro, q, report.QueryOptions{Spill: true}, opts)
			if got != want {
				t.Errorf("%s of %q spilled differs from it read directly (-direct +spilled):\n%s", f, q, cmp.Diff(want, got))
			}
			if n != wantN {
				t.Errorf("%s of %q spilled: Rendered = %+v, want %+v", f, q, n, wantN)
			}
		}
	}
	for _, q := range queries {
		compare(q, report.Formats)
	}
	// Several pages, in an order that is not the scan's: as csv, and as a table, which
	// counts the rows past its bound.
	compare("SELECT i, md5(i::VARCHAR) AS h FROM range(100000) t(i) ORDER BY h", []report.Format{report.FormatCSV, report.FormatTable})
}

// TestSpilledTableBounded checks that a text table of a spilled result shows its first rows
// and counts the others, as one read directly does.
func TestSpilledTableBounded(t *testing.T) {
	ro, _, _ := readOnlyFixture(t)
	const q = "SELECT i FROM range(100000) t(i) ORDER BY i DESC"
	opts := report.RenderOptions{Format: report.FormatTable, MaxTableRows: 10}
	want, _ := stream(t, ro, q, opts)
	got, n := streamWith(t, ro, q, report.QueryOptions{Spill: true}, opts)
	if got != want || n != (report.Rendered{Rows: 100000, Shown: 10}) {
		t.Errorf("table of 100000 spilled rows bounded at 10 = %+v\n%s\nwant 100000 rows, 10 shown:\n%s", n, got, want)
	}
}

// TestSpilledWithinMemoryLimit checks that a spilled result is held within DuckDB's memory
// limit, the rest in temp files, where a result read directly is held whole outside it.
func TestSpilledWithinMemoryLimit(t *testing.T) {
	ctx := context.Background()
	rw, path := fixtureDB(t)
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := store.Open(ctx, path, store.Options{ReadOnly: true, MemoryLimit: "16MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	// About 36 MB in a table.
	const q = "SELECT i, md5(i::VARCHAR) AS h FROM range(600000) t(i)"
	for _, spill := range []bool{false, true} {
		rows, err := report.QueryRows(ctx, ro.DB, q, report.QueryOptions{Spill: spill})
		if err != nil {
			t.Fatal(err)
		}
		var spilled int64
		err = ro.QueryRowContext(ctx, "SELECT sum(temporary_storage_bytes) FROM duckdb_memory()").Scan(&spilled)
		rows.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := spilled > 0; got != spill {
			t.Errorf("QueryRows with Spill %v of a 36 MB result at a 16MB limit: %d bytes in temp files", spill, spilled)
		}
	}
}

// TestSpilledCanceled checks that a spilled query stopped by its context returns the
// context's cause, and leaves no result table on the pooled connection.
func TestSpilledCanceled(t *testing.T) {
	ro, _, _ := readOnlyFixture(t)
	ro.SetMaxOpenConns(1) // the next query gets the same connection
	stop := errors.New("stopped by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() {
		rows, err := report.QueryRows(ctx, ro.DB, "SELECT count(*) FROM range(10000000000)", report.QueryOptions{Spill: true})
		if err == nil {
			rows.Close()
		}
		done <- err
	}()
	cancel(stop)
	if err := <-done; !errors.Is(err, stop) || strings.Contains(err.Error(), "INTERRUPT") {
		t.Errorf("spilled query canceled while it runs = %v, want an error wrapping the cause, not DuckDB's", err)
	}

	// Canceled while its pages are read.
	ctx, cancel = context.WithCancelCause(context.Background())
	rows, err := report.QueryRows(ctx, ro.DB, "SELECT i FROM range(100000) t(i)", report.QueryOptions{Spill: true})
	if err != nil {
		t.Fatal(err)
	}
	cancel(stop)
	if _, err := rows.Render(io.Discard, report.RenderOptions{Format: report.FormatCSV}); !errors.Is(err, stop) {
		t.Errorf("Render of a spilled result canceled between pages = %v, want an error wrapping the cause", err)
	}
	if err := rows.Close(); err != nil {
		t.Errorf("Close after a cancel = %v", err)
	}
	var n int
	if err := ro.QueryRow("SELECT count(*) FROM duckdb_tables() WHERE temporary").Scan(&n); err != nil || n != 0 {
		t.Errorf("temporary tables left on the connection = %d, %v; want 0", n, err)
	}
}
