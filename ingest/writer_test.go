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
