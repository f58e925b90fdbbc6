package outfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/batstat/batstat/internal/outfile"
)

// The database, its log and its snapshot are refused however the output names them.
func TestGuardCheck(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	os.Mkdir(data, 0o755)
	db := filepath.Join(data, "x.duckdb")
	write(t, db, "the only copy")
	for _, l := range []struct{ old, new string }{
		{"data", filepath.Join(root, "datalink")},      // a symlinked folder
		{"data/x.duckdb", filepath.Join(root, "dbln")}, // a link to the database
		{"data/x.duckdb.wal", filepath.Join(root, "walln")},
		{"x.duckdb", filepath.Join(data, "dbrel")},
	} {
		if err := os.Symlink(l.old, l.new); err != nil {
			t.Skip(err)
		}
	}
	if err := os.Link(db, filepath.Join(root, "hard.duckdb")); err != nil {
		t.Skip(err)
	}
	t.Chdir(data)
	g := outfile.Database("x.duckdb")
	clash := []string{
		"x.duckdb", "./x.duckdb", db, "../data/x.duckdb", "../datalink/x.duckdb", "../dbln",
		"dbrel", "../hard.duckdb",
		"x.duckdb.wal", "./x.duckdb.wal", "../datalink/x.duckdb.wal", "../walln",
		"x.duckdb.snapshot", filepath.Join(root, "datalink", "x.duckdb.snapshot"),
	}
	for _, out := range clash {
		var ce *outfile.ClashError
		if err := g.Check(out); !errors.As(err, &ce) {
			t.Errorf("Check(%q) = %v, want a *ClashError", out, err)
		}
	}
	for _, out := range []string{"x.csv", "x.duckdb.csv", "../x.duckdb", "../x.duckdb.wal", "sub/x.duckdb"} {
		if err := g.Check(out); err != nil {
			t.Errorf("Check(%q) = %v, want nil", out, err)
		}
	}
	if err := (outfile.Guard{}).Check("x.duckdb"); err != nil {
		t.Errorf("the zero Guard refused %v", err)
	}

	// A database reached through a link: the log DuckDB keeps is named after the link.
	g = outfile.Database(filepath.Join(root, "dbln"))
	for _, out := range []string{filepath.Join(root, "dbln.wal"), "x.duckdb.wal", "x.duckdb"} {
		var ce *outfile.ClashError
		if err := g.Check(out); !errors.As(err, &ce) {
			t.Errorf("Check(%q) of a linked database = %v, want a *ClashError", out, err)
		}
	}
}

// A partitioned export fills a new or empty folder: the database's own folder is refused
// naming the database; an unrelated folder with files, as not empty.
func TestGuardCheckDir(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	write(t, "x.duckdb", "db")
	os.Mkdir("full", 0o755)
	write(t, "full/a", "a")
	os.Mkdir("empty", 0o755)
	g := outfile.Database("x.duckdb")
	var ce *outfile.ClashError
	var ne *outfile.NotEmptyError
	for _, dir := range []string{".", root, "./"} {
		if err := g.CheckDir(dir); !errors.As(err, &ce) {
			t.Errorf("CheckDir(%q) = %v, want a *ClashError", dir, err)
		}
	}
	if err := g.CheckDir("x.duckdb"); !errors.As(err, &ce) {
		t.Errorf("CheckDir(the database) = %v, want a *ClashError", err)
	}
	if err := g.CheckDir("full"); !errors.As(err, &ne) {
		t.Errorf("CheckDir(full) = %v, want *NotEmptyError", err)
	}
	for _, dir := range []string{"empty", "new", "new/deeper"} {
		if err := g.CheckDir(dir); err != nil {
			t.Errorf("CheckDir(%q) = %v, want nil", dir, err)
		}
	}
}
