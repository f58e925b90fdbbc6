package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// These tests run the binary on a copy of one demo database: every output is written
// whole or not at all, never over the database, and is what its format says.

var demoOnce struct {
	sync.Once
	path string
	err  error
}

// demoCopy copies a demo database into a new folder as x.duckdb and returns the folder.
func demoCopy(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "batstat-demo-db")
		if err != nil {
			demoOnce.err = err
			return
		}
		cmd := exec.Command(binary, "demo")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			demoOnce.err = fmt.Errorf("demo: %v\n%s", err, out)
			return
		}
		demoOnce.path = filepath.Join(dir, "batstat-demo.duckdb")
	})
	if demoOnce.err != nil {
		t.Fatal(demoOnce.err)
	}
	b, err := os.ReadFile(demoOnce.path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.duckdb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// An output that is the database, its write-ahead log or its snapshot is refused with exit
// status 2 before anything is written, however its path is spelled.
func TestOutputIsNeverTheDatabase(t *testing.T) {
	dir := demoCopy(t)
	db := filepath.Join(dir, "x.duckdb")
	orig, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if err := os.Symlink(dir, filepath.Join(dir, "sub", "up")); err != nil {
		t.Skip(err)
	}
	os.Symlink("x.duckdb", filepath.Join(dir, "link.csv"))
	os.Symlink("x.duckdb.wal", filepath.Join(dir, "wal.csv"))
	outs := []string{"x.duckdb", "./x.duckdb", db, "sub/../x.duckdb", "sub/up/x.duckdb", "link.csv",
		"x.duckdb.wal", "sub/up/x.duckdb.wal", "wal.csv", "x.duckdb.snapshot", filepath.Join(dir, "x.duckdb.snapshot")}
	for _, out := range outs {
		for _, args := range [][]string{
			{"report", "--db", "x.duckdb", "--format", "csv", "--output", out, "delivery"},
			{"query", "--db", "./x.duckdb", "--format", "csv", "--output", out, "SELECT 1"},
			{"export", "--db", db, "--format", "csv", "--output", out},
			{"report", "--db", "x.duckdb", "--format", "html", "--output", out},
			{"report", "--db", "x.duckdb", "--format", "json", "--metrics-file", out, "delivery"},
			// Bad usage still writes the metrics file: never over the database.
			{"fetch", "--db", "x.duckdb", "--metrics-file", out, "--threads", "-2", "--api-key", "k", "a.csv"},
			{"report", "--db", "x.duckdb", "--format", "csv", "--output-dir", ".", "x"},
		} {
			if args[len(args)-1] == "x" {
				if out != "x.duckdb" {
					continue
				}
				// A report named x in the database's folder: x.csv is not the database,
				// but a database named x.csv would be.
				continue
			}
			r := runCLI(t, dir, "", args...)
			if r.code != 2 || !strings.Contains(r.stderr, "would destroy the data") {
				t.Errorf("batstat %q = exit %d, stderr %q; want 2 and a refusal", args, r.code, r.stderr)
			}
		}
	}
	if b, _ := os.ReadFile(db); !bytes.Equal(b, orig) {
		t.Fatalf("the database changed")
	}
	for _, name := range []string{"x.duckdb.wal", "x.duckdb.snapshot"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was written", name)
		}
	}
	// --output-dir: the file of each report is checked.
	os.Rename(db, filepath.Join(dir, "delivery.csv"))
	r := runCLI(t, dir, "", "report", "--db", "delivery.csv", "--format", "csv", "--output-dir", ".", "delivery", "cost")
	if r.code != 2 || !strings.Contains(r.stderr, "would destroy the data") {
		t.Errorf("report --output-dir over the database = exit %d, stderr %q", r.code, r.stderr)
	}
	os.Rename(filepath.Join(dir, "delivery.csv"), db)

	// A partitioned export fills a new folder: the database's folder is refused.
	for _, out := range []string{".", dir, "sub/up"} {
		r := runCLI(t, dir, "", "export", "--db", "x.duckdb", "--partition-by", "campaign", "--output", out)
		if r.code != 2 || !strings.Contains(r.stderr, "the database") {
			t.Errorf("export --partition-by --output %s = exit %d, stderr %q; want 2 naming the database", out, r.code, r.stderr)
		}
	}
	if b, _ := os.ReadFile(db); !bytes.Equal(b, orig) {
		t.Fatalf("the database changed")
	}
	// What stays allowed: a file beside the database, a new folder beside it.
	for _, args := range [][]string{
		{"report", "--db", "x.duckdb", "--format", "csv", "--output", "x.duckdb.csv", "delivery"},
		{"export", "--db", "x.duckdb", "--partition-by", "campaign", "--output", "parts"},
	} {
		if r := runCLI(t, dir, "", args...); r.code != 0 {
			t.Errorf("batstat %q = exit %d: %s", args, r.code, r.stderr)
		}
	}
}

// A write that fails (here: past the file size limit, as on a full disk) exits 1 and
// leaves the old output as it was, and no temporary file.
func TestFailedOutputKeepsTheOldFile(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for ulimit")
	}
	dir := demoCopy(t)
	const old = "the previous output\n"
	tests := []struct {
		name string
		args []string
	}{
		{"query", []string{"query", "--format", "csv", "--output", "out.csv", "SELECT * FROM status_checks"}},
		{"report", []string{"report", "--format", "json", "--output", "out.csv", "channels", "delivery", "cost"}},
		{"export", []string{"export", "--format", "csv", "--output", "out.csv", "status_checks"}},
		{"report --output-dir", []string{"report", "--format", "json", "--output-dir", "outdir", "delivery", "channels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.csv")
			os.WriteFile(out, []byte(old), 0o644)
			os.MkdirAll(filepath.Join(dir, "outdir"), 0o755)
			os.WriteFile(filepath.Join(dir, "outdir", "delivery.json"), []byte(old), 0o644)
			before := dirNames(t, dir)
			// ulimit -f counts 512-byte blocks in sh: 4 KiB, far less than the output.
			// SIGXFSZ is ignored so that a write past it fails with EFBIG, as on a full
			// disk, instead of killing the process (DuckDB writes from threads that Go's
			// handler does not own).
			args := append([]string{"-c", `trap '' XFSZ; ulimit -f 8 && exec "$0" "$@"`, binary}, append(tt.args[:1:1], append([]string{"--db", "x.duckdb"}, tt.args[1:]...)...)...)
			cmd := exec.Command("sh", args...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("batstat %q under ulimit -f = %v, want exit 1; stderr:\n%s", tt.args, err, stderr.String())
			}
			if b, _ := os.ReadFile(out); string(b) != old {
				t.Errorf("out.csv holds %d bytes after the failed write, want the old output", len(b))
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "outdir", "delivery.json")); string(b) != old {
				t.Errorf("outdir/delivery.json holds %d bytes after the failed write, want the old output", len(b))
			}
			if got := dirNames(t, dir); !slices.Equal(got, before) {
				t.Errorf("folder holds %q after the failed write, want %q", got, before)
			}
			if got := dirNames(t, filepath.Join(dir, "outdir")); !slices.Equal(got, []string{"delivery.json"}) {
				t.Errorf("outdir holds %q after the failed write", got)
			}
		})
	}
}

// csv holds one table: several reports need --output-dir, one file per report.
func TestReportCSVOfSeveralReports(t *testing.T) {
	dir := demoCopy(t)
	r := runCLI(t, dir, "", "report", "--db", "x.duckdb", "--format", "csv")
	if r.code != 2 || !strings.Contains(r.stderr, "--output-dir") || r.stdout != "" {
		t.Errorf("report --format csv of the default reports = exit %d, stdout %q, stderr %q; want 2 pointing to --output-dir", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, dir, "", "report", "--db", "x.duckdb", "--format", "csv", "--output", "all.csv", "delivery", "cost")
	if r.code != 2 || !strings.Contains(r.stderr, "--output-dir") {
		t.Errorf("report --format csv --output of two reports = exit %d, stderr %q; want 2", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "all.csv")); err == nil {
		t.Errorf("a refused report wrote all.csv")
	}
	r = runCLI(t, dir, "", "report", "--db", "x.duckdb", "--format", "csv", "--output-dir", "out", "delivery", "cost")
	if r.code != 0 {
		t.Fatalf("report --output-dir = exit %d: %s", r.code, r.stderr)
	}
	if got := dirNames(t, filepath.Join(dir, "out")); !slices.Equal(got, []string{"cost.csv", "delivery.csv"}) {
		t.Errorf("out holds %q, want cost.csv and delivery.csv", got)
	}
	for _, name := range []string{"delivery", "cost"} {
		b, _ := os.ReadFile(filepath.Join(dir, "out", name+".csv"))
		one := runCLI(t, dir, "", "report", "--db", "x.duckdb", "--format", "csv", name)
		if one.code != 0 || string(b) != one.stdout || strings.Contains(string(b), "#") {
			t.Errorf("out/%s.csv = %q, want what report --format csv %s prints: %q", name, b, name, one.stdout)
		}
	}
	r = runCLI(t, dir, "", "report", "--db", "x.duckdb", "--format", "markdown", "--output-dir", "md")
	if got := dirNames(t, filepath.Join(dir, "md")); r.code != 0 || !slices.Equal(got, []string{"cost.md", "delivery.md", "fallback.md"}) {
		t.Errorf("report --format markdown --output-dir = exit %d, files %q, stderr %q", r.code, got, r.stderr)
	}
	r = runCLI(t, dir, "", "report", "--db", "x.duckdb", "--output", "a", "--output-dir", "b")
	if r.code != 2 {
		t.Errorf("report --output with --output-dir = exit %d, want 2", r.code)
	}
}

// export: the format follows a known extension, an unknown one is refused, and a
// partitioned export writes Parquet unless told otherwise.
func TestExportFormats(t *testing.T) {
	dir := demoCopy(t)
	for _, tt := range []struct {
		args  []string
		code  int
		file  string
		magic string
	}{
		{[]string{"--output", "a.parquet"}, 0, "a.parquet", "PAR1"},
		{[]string{"--output", "a.jsonl"}, 0, "a.jsonl", `{"message_id"`},
		{[]string{"--output", "a"}, 0, "a", "message_id,"},
		{[]string{"--output", "a.csv.gz"}, 0, "a.csv.gz", "\x1f\x8b"},
		{[]string{"--output", "a.xlsx"}, 2, "a.xlsx", ""},
		{[]string{"--output", "a.txt"}, 2, "a.txt", ""},
		{[]string{"--format", "xlsx", "--output", "b.csv"}, 2, "b.csv", ""},
		{[]string{"--format", "csv", "--output", "c.parquet"}, 2, "c.parquet", ""},
		{[]string{"--partition-by", "campaign"}, 2, "", ""},
		{[]string{"--threads", "-2", "--output", "d.csv"}, 2, "d.csv", ""},
		{[]string{"--memory-limit", "lots", "--output", "e.csv"}, 2, "e.csv", ""},
	} {
		args := append([]string{"export", "--db", "x.duckdb"}, tt.args...)
		r := runCLI(t, dir, "", args...)
		if r.code != tt.code {
			t.Errorf("batstat %q = exit %d, want %d; stderr %q", args, r.code, tt.code, r.stderr)
			continue
		}
		if tt.code == 2 && (strings.Contains(r.stderr, "Error:") || strings.Count(r.stderr, "\n") != 1) {
			t.Errorf("batstat %q: stderr %q, want one line of ours", args, r.stderr)
		}
		if tt.file == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, tt.file))
		switch {
		case tt.code != 0 && err == nil:
			t.Errorf("batstat %q wrote %s", args, tt.file)
		case tt.code == 0 && !bytes.HasPrefix(b, []byte(tt.magic)):
			t.Errorf("batstat %q: %s starts %q, want %q", args, tt.file, b[:min(len(b), 16)], tt.magic)
		}
	}
	if r := runCLI(t, dir, "", "export", "--db", "x.duckdb", "--output", "x.xlsx"); !strings.Contains(r.stderr, ".parquet") {
		t.Errorf("an unknown extension: stderr %q, want the known ones named", r.stderr)
	}
	r := runCLI(t, dir, "", "export", "--db", "x.duckdb", "--partition-by", "campaign", "--output", "parts")
	files, _ := filepath.Glob(filepath.Join(dir, "parts", "campaign=*", "*"))
	if r.code != 0 || len(files) == 0 {
		t.Fatalf("partitioned export = exit %d, files %q, stderr %q", r.code, files, r.stderr)
	}
	for _, f := range files {
		if b, _ := os.ReadFile(f); !strings.HasSuffix(f, ".parquet") || !bytes.HasPrefix(b, []byte("PAR1")) {
			t.Errorf("partitioned export wrote %s, want Parquet", f)
		}
	}
}
