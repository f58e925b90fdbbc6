package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/batstat/batstat/report"
)

// TestExportParquet exports message_status from a read-only database and reads the file
// back with parquet-go, an implementation independent of DuckDB: money must arrive as
// DECIMAL and times as TIMESTAMP.
func TestExportParquet(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	out := filepath.Join(t.TempDir(), "it's here.parquet") // a quote in the path
	n, err := report.Export(ctx, ro.DB, report.ExportOptions{Format: "parquet", Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if n != 16 {
		t.Errorf("Export rows = %d, want 16", n)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != 16 {
		t.Errorf("parquet NumRows = %d, want 16", pf.NumRows())
	}
	schema := pf.Schema()
	if first := schema.Fields()[0].Name(); first != "message_id" {
		t.Errorf("first column = %s, want message_id", first)
	}
	for _, col := range []string{"cost", "rate", "rate_amount", "bill_amount"} {
		leaf, ok := schema.Lookup(col)
		if !ok {
			t.Fatalf("no column %s", col)
		}
		dec, ok := leaf.Node.Type().LogicalType().Value.(*format.DecimalType)
		if !ok || dec.Precision != 18 || dec.Scale != 6 {
			t.Errorf("%s logical type = %v, want DECIMAL(18,6)", col, leaf.Node.Type().LogicalType())
		}
	}
	for _, col := range []string{"checked_at", "first_loaded_at"} {
		leaf, _ := schema.Lookup(col)
		ts, ok := leaf.Node.Type().LogicalType().Value.(*format.TimestampType)
		if !ok || !ts.IsAdjustedToUTC || ts.Unit.Value == nil || ts.Unit.Value.Duration() != time.Microsecond {
			t.Errorf("%s logical type = %v, want TIMESTAMP(isAdjustedToUTC=true, MICROS)", col, leaf.Node.Type().LogicalType())
		}
	}

	// Read every row and check the values of sp-08.
	idx := func(col string) int {
		leaf, ok := schema.Lookup(col)
		if !ok {
			t.Fatalf("no column %s", col)
		}
		return leaf.ColumnIndex
	}
	idCol, costCol, checkedCol, statusCol := idx("message_id"), idx("cost"), idx("checked_at"), idx("deliverystatus")
	r := parquet.NewReader(pf)
	defer r.Close()
	rows := make([]parquet.Row, 32)
	got, err := r.ReadRows(rows)
	if got != 16 {
		t.Fatalf("ReadRows = %d, %v; want 16", got, err)
	}
	var seen []string
	for _, row := range rows[:got] {
		vals := map[int]parquet.Value{}
		for _, v := range row {
			vals[v.Column()] = v
		}
		id := vals[idCol].String()
		seen = append(seen, id)
		switch id {
		case "sp-08":
			if c := vals[costCol].Int64(); c != 123456 {
				t.Errorf("sp-08 cost = %d micro-units, want 123456 (0.123456)", c)
			}
			want := time.Date(2025, 3, 10, 10, 0, 10, 0, time.UTC).UnixMicro()
			if c := vals[checkedCol].Int64(); c != want {
				t.Errorf("sp-08 checked_at = %d µs, want %d", c, want)
			}
			if s := vals[statusCol].String(); s != "delivered" {
				t.Errorf("sp-08 deliverystatus = %q, want delivered", s)
			}
		case "sp-07":
			if !vals[costCol].IsNull() || !vals[statusCol].IsNull() {
				t.Errorf("sp-07 (never answered) cost, status = %v, %v; want NULLs", vals[costCol], vals[statusCol])
			}
		}
	}
	slices.Sort(seen)
	if !slices.Contains(seen, "sp-08") || !slices.Contains(seen, "qu-2") {
		t.Errorf("message ids read back = %v", seen)
	}
}

func TestExportPartitioned(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	out := filepath.Join(t.TempDir(), "by_campaign")
	opts := report.ExportOptions{Table: "MESSAGES", Format: "csv", Output: out, PartitionBy: "Campaign"}
	n, err := report.Export(ctx, ro.DB, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n != 16 {
		t.Errorf("Export rows = %d, want 16", n)
	}
	var dirs []string
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, e := range entries {
		dirs = append(dirs, e.Name())
		files, _ := filepath.Glob(filepath.Join(out, e.Name(), "*.csv"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines += strings.Count(string(b), "\n") - 1 // minus the header
		}
	}
	if diff := cmp.Diff([]string{"campaign=quiet", "campaign=spring", "campaign=summer"}, dirs); diff != "" {
		t.Errorf("partition folders (-want +got):\n%s", diff)
	}
	if lines != 16 {
		t.Errorf("rows in the partition files = %d, want 16", lines)
	}

	// A second export into the same directory does not overwrite it.
	if _, err := report.Export(ctx, ro.DB, opts); err == nil || !strings.Contains(err.Error(), "already holds files") {
		t.Errorf("second partitioned export = %v, want an error saying the directory holds files", err)
	}
}

func TestExportQueryToStdout(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	var buf bytes.Buffer
	n, err := report.Export(ctx, ro.DB, report.ExportOptions{
		Query:  "SELECT message_id, cost FROM message_status WHERE cost IS NOT NULL ORDER BY message_id -- trailing comment",
		Format: "json",
		Output: "-",
		Stdout: &buf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("Export rows = %d, want 10", n)
	}
	// Newline-delimited JSON: one object per line.
	var ids []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var row struct {
			MessageID string          `json:"message_id"`
			Cost      json.RawMessage `json:"cost"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, row.MessageID)
		if row.MessageID == "sp-08" && string(row.Cost) != "0.123456" {
			t.Errorf("sp-08 cost = %s, want 0.123456", row.Cost)
		}
	}
	if len(ids) != 10 || ids[0] != "sp-01" {
		t.Errorf("ids = %v", ids)
	}
}

// TestExportRefuses runs on a read-write database, so that a statement smuggled past the
// checks would really change it.
func TestExportRefuses(t *testing.T) {
	ctx := context.Background()
	rw, _ := fixtureDB(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		opts report.ExportOptions
		want string
	}{
		{"unknown table", report.ExportOptions{Table: "messages; DROP TABLE runs", Output: filepath.Join(dir, "a.csv")}, "no table or view"},
		{"two statements", report.ExportOptions{Query: "SELECT 1; DROP TABLE runs; SELECT 2", Output: filepath.Join(dir, "b.csv")}, "a statement in it is not a query"},
		{"breaking out of COPY", report.ExportOptions{Query: "SELECT 1) TO 'x.csv'; DROP TABLE runs; COPY (SELECT 1", Output: filepath.Join(dir, "b.csv")}, "syntax error"},
		{"not a select", report.ExportOptions{Query: "DELETE FROM runs", Output: filepath.Join(dir, "c.csv")}, "a statement in it is not a query"},
		{"parameter", report.ExportOptions{Query: "SELECT $campaigns", Output: filepath.Join(dir, "d.csv")}, "no parameters"},
		{"table and query", report.ExportOptions{Table: "runs", Query: "SELECT 1", Output: filepath.Join(dir, "e.csv")}, "not both"},
		{"unknown column", report.ExportOptions{PartitionBy: "nope", Output: filepath.Join(dir, "f")}, `no column "nope"`},
		{"format", report.ExportOptions{Format: "xlsx", Output: filepath.Join(dir, "g.xlsx")}, "unknown format"},
		{"extension", report.ExportOptions{Output: filepath.Join(dir, "g.xlsx")}, "cannot tell the format of"},
		{"format against extension", report.ExportOptions{Format: "csv", Output: filepath.Join(dir, "g.parquet")}, "named as a parquet file"},
		{"partition to stdout", report.ExportOptions{PartitionBy: "campaign", Output: "-", Stdout: &bytes.Buffer{}}, "give --output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report.Export(ctx, rw.DB, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Export(%+v) = %v, want an error containing %q", tt.opts, err, tt.want)
			}
		})
	}
	var n int
	if err := rw.QueryRowContext(ctx, "SELECT count(*) FROM runs").Scan(&n); err != nil || n != 3 {
		t.Errorf("runs after the refused exports: %d rows, %v; want 3 rows", n, err)
	}
}

func TestExportFormatFromExtension(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	dir := t.TempDir()
	for _, tt := range []struct{ file, magic string }{
		{"a.parquet", "PAR1"},
		{"a.ndjson", `{"run_id":`},
		{"a", "run_id,started_at"},
		{"a.csv.gz", "\x1f\x8b"},
	} {
		out := filepath.Join(dir, tt.file)
		if _, err := report.Export(ctx, ro.DB, report.ExportOptions{Table: "runs", Output: out}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(tt.magic)) {
			t.Errorf("%s starts %q, want %q", tt.file, b[:min(len(b), 20)], tt.magic)
		}
	}
}

// TestExportCanceled checks that an export stopped by its context returns the context's
// cause, not DuckDB's interrupt error.
func TestExportCanceled(t *testing.T) {
	db, _ := fixtureDB(t)
	stop := errors.New("stopped by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() {
		_, err := report.Export(ctx, db.DB, report.ExportOptions{
			Query:  "SELECT count(*) FROM range(10000000000)",
			Output: filepath.Join(t.TempDir(), "slow.csv"),
		})
		done <- err
	}()
	cancel(stop)
	if err := <-done; !errors.Is(err, stop) || strings.Contains(err.Error(), "INTERRUPT") {
		t.Errorf("Export canceled while it runs = %v, want an error wrapping the cause, not DuckDB's", err)
	}
}
