//go:build unix

package outfile_test

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/batstat/batstat/internal/outfile"
)

// A target that is not a regular file is written in place: a rename would replace a
// device or a pipe with a file.
func TestCreateWritesAPipeInPlace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	got := make(chan string)
	go func() {
		r, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r)
		r.Close()
		got <- string(b)
	}()
	f, err := outfile.Create(fifo)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.TempName(); ok {
		t.Errorf("TempName of a pipe = ok, want the pipe written in place")
	}
	io.WriteString(f, "through the pipe\n")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "through the pipe\n" {
		t.Errorf("the pipe carried %q", s)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the pipe was replaced (%v)", err)
	}
}
