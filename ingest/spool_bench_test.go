package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/store"
	"github.com/batstat/batstat/webhook"
)

// writeBenchSpool writes a spool of events for messages m-00000000 .. m-(messages-1): each
// pushes "processing" then its final status (90% delivered at 0.05), one hour file per
// 500,000 lines, with 5% of the lines sent twice (the provider's duplicates).
func writeBenchSpool(tb testing.TB, dir string, messages int) (events int) {
	tb.Helper()
	at := time.Date(2025, 1, 23, 10, 0, 0, 0, time.UTC)
	var buf []byte
	hour := 0
	flush := func() {
		name := filepath.Join(dir, fmt.Sprintf("events-20250123T%02d.ndjson", 10+hour))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			tb.Fatal(err)
		}
		buf, hour = buf[:0], hour+1
	}
	lines := 0
	add := func(id, status string, ts time.Time, cost string) {
		raw := `{"messageId":"` + id + `","deliverystatus":"` + status + `","timestamp":"` + ts.Format(time.RFC3339Nano) + `"`
		if cost != "" {
			raw += `,"cost":` + cost
		}
		raw += "}"
		copies := 1
		if lines%20 == 0 {
			copies = 2
		}
		for range copies {
			buf = webhook.AppendLines(buf, ts.Add(300*time.Millisecond), "203.0.113.7:51234", []webhook.Event{{Raw: []byte(raw)}})
			lines++
			if lines%500_000 == 0 {
				flush()
			}
		}
	}
	for i := range messages {
		id := "m-" + fmt.Sprintf("%08d", i)
		t := at.Add(time.Duration(i) * time.Millisecond)
		add(id, "processing", t, "")
		final, cost := "delivered", "0.05"
		if i%10 == 9 {
			final, cost = "undeliverable", "0.0"
		}
		add(id, final, t.Add(1500*time.Millisecond), cost)
	}
	if len(buf) > 0 {
		flush()
	}
	return lines
}

// BenchmarkLoadSpool measures batstat webhook load: spool lines read, parsed and stored per
// second (rows/s), into a database whose messages table holds the campaign's IDs (so the
// events join it), at the memory limit of a fetch. BATSTAT_BENCH_SPOOL_MESSAGES sets the
// messages (default 500,000: 1,050,000 lines).
func BenchmarkLoadSpool(b *testing.B) {
	messages := 500_000
	if v := os.Getenv("BATSTAT_BENCH_SPOOL_MESSAGES"); v != "" {
		messages, _ = strconv.Atoi(v)
	}
	spool := b.TempDir()
	lines := writeBenchSpool(b, spool, messages)
	ctx := context.Background()
	b.ResetTimer()
	var elapsed, cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("l-%d.duckdb", i)), store.Options{MemoryLimit: benchMemoryLimit()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO messages (message_id, campaign, first_loaded_at)
			SELECT 'm-' || lpad(i::VARCHAR, 8, '0'), 'bench', TIMESTAMPTZ '2025-01-23 09:00:00+00' FROM range(%d) t(i)`, messages)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := cpuTime(b)
		start := time.Now()
		sum, err := ingest.LoadSpool(ctx, db, []string{spool}, ingest.SpoolOptions{Batch: benchBatch()})
		elapsed += time.Since(start)
		cpu += cpuTime(b) - cpu0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if sum.Read != int64(lines) || sum.Loaded != int64(2*messages) || sum.Unknown != 0 {
			b.Fatalf("read %d of %d lines, loaded %d (want %d), %d unknown", sum.Read, lines, sum.Loaded, 2*messages, sum.Unknown)
		}
		db.Close()
		b.StartTimer()
	}
	rows := float64(lines) * float64(b.N)
	b.ReportMetric(rows/elapsed.Seconds(), "rows/s")
	// CPU time (user + system, DuckDB's threads included) per row: what a busy machine
	// does not inflate as it does the elapsed time.
	b.ReportMetric(float64(cpu.Microseconds())/rows, "cpu-µs/row")
}

// cpuTime returns the process's CPU time so far, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMemoryLimit is a fetch's memory limit, or BATSTAT_BENCH_MEMORY_LIMIT.
func benchMemoryLimit() string {
	if v := os.Getenv("BATSTAT_BENCH_MEMORY_LIMIT"); v != "" {
		return v
	}
	return ingest.MemoryLimit
}

// benchBatch is the default batch, or BATSTAT_BENCH_SPOOL_BATCH.
func benchBatch() int {
	n, _ := strconv.Atoi(os.Getenv("BATSTAT_BENCH_SPOOL_BATCH"))
	return n
}
