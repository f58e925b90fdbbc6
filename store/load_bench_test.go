package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/batstat/batstat/store"
)

// BenchmarkLoad loads 1,000,000 input rows in chunks of 100,000, as a fetch does, under
// fetch's 96MB memory limit: into a fresh file, and again into a file that has them (the
// cron case: every ID known). cpu-s is the process's CPU time per load, which a shared
// machine disturbs less than the wall time; duckdb-MiB what DuckDB held at the end of the
// load (duckdb_memory()), its tables included.
//
//	go test -run '^$' -bench Load -benchtime 1x -count 5 ./store/
func BenchmarkLoad(b *testing.B) {
	if testing.Short() {
		b.Skip("loads a million rows")
	}
	const n, chunk = 1_000_000, 100_000
	for _, again := range []bool{false, true} {
		name := "fresh"
		if again {
			name = "again"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				db, err := store.Open(ctx, filepath.Join(b.TempDir(), "l.duckdb"), store.Options{MemoryLimit: "96MB"})
				if err != nil {
					b.Fatal(err)
				}
				if again {
					benchLoad(b, db, n, chunk)
				}
				cpu := cpuTime()
				b.StartTimer()
				mem := benchLoad(b, db, n, chunk)
				b.StopTimer()
				b.ReportMetric((cpuTime() - cpu).Seconds(), "cpu-s/op")
				b.ReportMetric(float64(mem)/(1<<20), "duckdb-MiB")
				db.Close()
			}
		})
	}
}

// benchLoad loads n rows and returns the memory DuckDB held once the last chunk was
// settled, before the load's tables were dropped.
func benchLoad(b *testing.B, db *store.DB, n, chunk int) (mem int64) {
	ctx := context.Background()
	runID, err := db.StartRun(ctx, store.RunStart{Inputs: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	l, err := db.StartLoad(ctx, conn, store.LoadOptions{RunID: runID, At: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		m := &store.Message{MessageID: fmt.Sprintf("msg-%09d-7f3a9c", i), Campaign: fmt.Sprintf("spring-%d", i%5),
			SourceFile: "/srv/campaigns/sent/spring-sale.csv", SourceLine: int64(i + 2), Recipient: "+380500000000"}
		if err := l.Stage(m); err != nil {
			b.Fatal(err)
		}
		if (i+1)%chunk == 0 {
			if err := l.Settle(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := l.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRow(`SELECT sum(memory_usage_bytes)::BIGINT FROM duckdb_memory()`).Scan(&mem); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	return mem
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
