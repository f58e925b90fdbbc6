package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/batstat/batstat/store"
)

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// TestQueryMemoryLimitHoldsForTheResult checks, through the binary, that query under
// --memory-limit keeps a result far larger than the limit out of memory: the peak RSS of
// the process stays under 150 MB while the csv of the result is about 330 MB, which
// duckdb-go alone would hold whole.
func TestQueryMemoryLimitHoldsForTheResult(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 330 MB of csv")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "q.duckdb")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	const rows = 3_000_000
	cmd := exec.Command(binary, "query", "--db", path, "--memory-limit", "32MB", "--format", "csv",
		"SELECT i, repeat('x', 100) || i AS s FROM range(3000000) t(i)")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	var out countWriter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Writer(&out), &stderr // not held: 330 MB
	if err := cmd.Run(); err != nil {
		t.Fatalf("query: %v\n%s", err, stderr.String())
	}
	if out.n < 100*rows {
		t.Fatalf("query wrote %d bytes, want the csv of %d rows of over 100 bytes", out.n, rows)
	}
	const limit = 150 << 20
	if rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10; rss > limit {
		t.Errorf("query --memory-limit 32MB of %d MB of csv peaked at %d MiB, want under %d MiB", out.n>>20, rss>>20, limit>>20)
	}
}
