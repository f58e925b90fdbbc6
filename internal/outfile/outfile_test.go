package outfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batstat/batstat/internal/outfile"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestCreateCommitReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report.csv")
	write(t, out, "old\n")
	f, err := outfile.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "new,")
	// Until Commit the old file is what a reader sees.
	if got := read(t, out); got != "old\n" {
		t.Errorf("before Commit the output holds %q, want the old %q", got, "old\n")
	}
	io.WriteString(f, "file\n")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // deferred in real use: a no-op after Commit
	if got := read(t, out); got != "new,file\n" {
		t.Errorf("after Commit the output holds %q", got)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after Commit = %v, want the old file's 0640", fi.Mode().Perm())
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("folder holds %q, want the output alone", got)
	}
}

func TestAbortKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "q.csv")
	write(t, out, "old\n")
	f, err := outfile.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, strings.Repeat("half-written row\n", 1000))
	f.Abort()
	if got := read(t, out); got != "old\n" {
		t.Errorf("after Abort the output holds %d bytes, want the old file", len(got))
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("folder holds %q after Abort, want no temporary file", got)
	}
	if err := f.Commit(); err == nil {
		t.Errorf("Commit after Abort = nil, want an error")
	}
	// A new output that is aborted leaves nothing at all.
	f, err = outfile.Create(filepath.Join(dir, "new.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("folder holds %q after an aborted new output", got)
	}
}

// A symbolic link stays a link: the file it leads to gets the output.
func TestCreateThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "data", "real.csv")
	os.Mkdir(filepath.Dir(real), 0o755)
	write(t, real, "old\n")
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink("data/real.csv", link); err != nil {
		t.Skip(err)
	}
	f, err := outfile.Create(link)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "new\n")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file (%v)", err)
	}
	if got := read(t, real); got != "new\n" {
		t.Errorf("the linked file holds %q, want the output", got)
	}
}

// A writer that opens files by name writes the temporary file; Commit renames it.
func TestTempNameForAWriterByName(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "export.csv.gz")
	f, err := outfile.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	name, ok := f.TempName()
	if !ok || filepath.Dir(name) != dir || !strings.HasSuffix(name, ".csv.gz") {
		t.Fatalf("TempName = %q, %v; want a name in %s ending .csv.gz", name, ok, dir)
	}
	write(t, name, "by name\n")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, out); got != "by name\n" {
		t.Errorf("output holds %q", got)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("folder holds %q", got)
	}
}

func TestCreateRefusesADirectory(t *testing.T) {
	if _, err := outfile.Create(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Create(a directory) = %v, want an error saying so", err)
	}
}

func TestDir(t *testing.T) {
	parent := t.TempDir()
	for _, tt := range []struct {
		name  string
		setup func(path string)
	}{
		{"new", func(string) {}},
		{"empty", func(p string) { os.Mkdir(p, 0o755) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(parent, tt.name)
			tt.setup(out)
			d, err := outfile.CreateDir(out)
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(d.Name(), "campaign=a"), 0o755)
			write(t, filepath.Join(d.Name(), "campaign=a", "data.parquet"), "x")
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := read(t, filepath.Join(out, "campaign=a", "data.parquet")); got != "x" {
				t.Errorf("committed folder holds %q", got)
			}
		})
	}
	full := filepath.Join(parent, "full")
	os.Mkdir(full, 0o755)
	write(t, filepath.Join(full, "keep"), "k")
	var ne *outfile.NotEmptyError
	if _, err := outfile.CreateDir(full); !errors.As(err, &ne) {
		t.Errorf("CreateDir(a folder with files) = %v, want *NotEmptyError", err)
	}
	d, err := outfile.CreateDir(filepath.Join(parent, "aborted"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(d.Name(), "part"), "p")
	before := len(names(t, parent))
	d.Abort()
	if after := len(names(t, parent)); after != before-1 {
		t.Errorf("Abort left the temporary folder: %q", names(t, parent))
	}
}
