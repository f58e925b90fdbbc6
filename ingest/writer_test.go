package ingest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/batstat/batstat/store"
)

// What a run has staged must not pile up in memory: a temp table that DELETE empties keeps
// the memory of every row it held, so the writer replaces its staging tables after each
// batch. After a checkpoint has written the committed rows to the file, the in-memory
// tables hold at most what is staged (nothing, after run), not the run's 40,000 rows
// (BENCHMARKS.md has what they held when they were emptied with DELETE).
func TestWriterStagingDoesNotAccumulate(t *testing.T) {
	ctx := context.Background()
	db, runID := openRunning(t, filepath.Join(t.TempDir(), "w.duckdb"), store.Options{})
	defer db.Close()
	w, err := newWriter(ctx, db, runID, &counters{}, &Config{BatchSize: 2000, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	in := make(chan outcome)
	go sendAll(in, benchOutcomes(40_000, 0.4, 0))
	if err := w.run(in); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	var stored, inMemory int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM status_checks`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx,
		`SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'`).Scan(&inMemory); err != nil {
		t.Fatal(err)
	}
	if stored != 40_000 || inMemory > 2<<20 {
		t.Errorf("%d answers stored, in-memory tables hold %d bytes after the checkpoint; want 40000 and at most 2 MiB",
			stored, inMemory)
	}
}

// A cut outcome has the writer commit what it holds at once, and go on staging while that
// commit runs: the answers before it are in the database while those after it still wait
// for their batch, which neither its size nor its time (an hour) would end.
func TestWriterCutCommitsWhatItHolds(t *testing.T) {
	ctx := context.Background()
	db, runID := openRunning(t, filepath.Join(t.TempDir(), "w.duckdb"), store.Options{})
	defer db.Close()
	w, err := newWriter(ctx, db, runID, &counters{}, &Config{BatchSize: 1 << 20, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	stored := func() int64 {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM status_checks`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	in := make(chan outcome)
	done := make(chan error, 1)
	go func() { done <- w.run(in) }()
	outs := benchOutcomes(300, 0.4, 0)
	for _, o := range outs[:200] {
		in <- o
	}
	in <- outcome{cut: true}
	for _, o := range outs[200:] {
		in <- o
	}
	// The commit runs beside the writer: wait for it, with a bound that only a cut
	// that commits nothing reaches.
	for deadline := time.Now().Add(20 * time.Second); stored() < 200; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d answers stored 20 s after the cut, want the 200 before it", stored())
		}
	}
	if n := stored(); n != 200 {
		t.Errorf("%d answers stored after the cut, want the 200 before it, not those after", n)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := stored(); n != 300 {
		t.Errorf("%d answers stored at the end, want 300", n)
	}
}

// openRunning opens a fresh database at path with a run in progress for a writer to write
// to.
func openRunning(tb testing.TB, path string, opts store.Options) (*store.DB, int64) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	runID, err := db.StartRun(ctx, store.RunStart{})
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	return db, runID
}

// sendAll sends outs to the writer's input, then closes it.
func sendAll(in chan<- outcome, outs []outcome) {
	for _, o := range outs {
		in <- o
	}
	close(in)
}
