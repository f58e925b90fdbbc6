package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batstat/batstat/webhook"
)

// BenchmarkReceiver measures accepted events per second over loopback HTTP, one event per
// request, at 1, 16 and 64 concurrent senders, with every 200 waiting for its fsync, and
// the fsyncs per second that group commit needed for them.
//
// The receiver runs in the benchmark's process, on a spool under the temp directory,
// unless BATSTAT_BENCH_WEBHOOK_URL names one running elsewhere (scripts/bench-webhook.sh
// runs the binary so); the fsyncs are then the receiver's to report.
func BenchmarkReceiver(b *testing.B) {
	if testing.Short() {
		b.Skip("benchmark of disk and loopback throughput")
	}
	for _, senders := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			url := os.Getenv("BATSTAT_BENCH_WEBHOOK_URL")
			var rv *webhook.Receiver
			if url == "" {
				var base string
				base, rv = startReceiver(b, webhook.Config{Spool: b.TempDir()})
				url = base + webhook.DefaultPath
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxIdleConns: senders}, Timeout: time.Minute}
			prefix := fmt.Sprintf("bench-%d-%d-", time.Now().UnixNano(), senders)
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			var st0 webhook.Stats
			if rv != nil {
				st0 = rv.Spool().Stats()
			}
			b.ResetTimer()
			start := time.Now()
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						body := `{"messageId":"` + prefix + fmt.Sprint(i) + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`
						resp, err := client.Post(url, "application/json", strings.NewReader(body))
						if err != nil {
							failed.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d requests failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			if rv != nil {
				st := rv.Spool().Stats()
				syncs := st.Syncs - st0.Syncs
				b.ReportMetric(float64(syncs)/elapsed.Seconds(), "fsyncs/s")
				b.ReportMetric(float64(b.N)/float64(syncs), "events/fsync")
			}
		})
	}
}

// BenchmarkReadSpool measures how fast a loader can read a spool: records per second.
func BenchmarkReadSpool(b *testing.B) {
	dir := b.TempDir()
	const n = 200_000
	var buf []byte
	at := time.Date(2025, 1, 23, 10, 30, 0, 0, time.UTC)
	for i := range n {
		raw := []byte(`{"messageId":"m-` + fmt.Sprintf("%08d", i) + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00.123Z","cost":0.05}`)
		buf = webhook.AppendLines(buf, at.Add(time.Duration(i)*time.Millisecond), "203.0.113.7:51234", []webhook.Event{{Raw: raw}})
	}
	if err := os.WriteFile(filepath.Join(dir, "events-20250123T10.ndjson"), buf, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		got := 0
		for _, err := range webhook.ReadSpool(context.Background(), []string{dir}, nil) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("read %d records, want %d", got, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
