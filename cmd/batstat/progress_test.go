package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/ingest"
)

// fakeCounts is a run's counters as a test sets them.
type fakeCounts struct {
	mu sync.Mutex
	c  ingest.Counts
}

func (f *fakeCounts) set(c ingest.Counts) {
	f.mu.Lock()
	f.c = c
	f.mu.Unlock()
}

func (f *fakeCounts) get() ingest.Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.c
}

// Without a terminal, a fetch logs a progress line every progressLogEvery, with the
// figures of that moment, and none at the end (the summary line follows).
func TestLogProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		p := newProgress(&bytes.Buffer{}, false, log)
		var counts fakeCounts
		p.Start(1000, counts.get)
		time.Sleep(progressLogEvery / 2)
		counts.set(ingest.Counts{Requests: 130, Done: 100, Errored: 2, Retries: 30, RateLimited: 5})
		time.Sleep(progressLogEvery / 2)
		synctest.Wait()
		counts.set(ingest.Counts{Requests: 1000, Done: 1000})
		time.Sleep(progressLogEvery)
		synctest.Wait()
		counts.set(ingest.Counts{Requests: 1100, Done: 1000})
		time.Sleep(progressLogEvery / 2)
		p.Stop()

		var got []map[string]any
		for line := range strings.Lines(logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			got = append(got, m)
		}
		want := []map[string]any{
			{"level": "INFO", "msg": "fetch progress", "done": 100.0, "total": 1000.0, "failed": 2.0, "retries": 30.0,
				"rate_limited": 5.0, "per_second": 10.0, "eta_s": 90.0},
			{"level": "INFO", "msg": "fetch progress", "done": 1000.0, "total": 1000.0, "failed": 0.0, "retries": 0.0,
				"rate_limited": 0.0, "per_second": 50.0},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("progress log lines (-want +got):\n%s", diff)
		}
	})
}

// On a terminal the bar shows the messages done and, once there are any, the failures,
// retries and 429s. A Progress serves several runs.
func TestBarProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		p := newProgress(&out, true, slog.New(slog.DiscardHandler))
		for run := range 2 {
			out.Reset()
			var counts fakeCounts
			p.Start(40, counts.get)
			counts.set(ingest.Counts{Requests: 12, Done: 10, Errored: 1, Retries: 2, RateLimited: 1})
			time.Sleep(time.Second)
			synctest.Wait()
			if s := out.String(); !strings.Contains(s, "fetching (1 failed, 2 retries, 1×429)") || !strings.Contains(s, "10/40") {
				t.Errorf("run %d: bar = %q, want the counts", run, s)
			}
			p.Stop() // synctest.Test fails if the bar's goroutine outlives it
		}
	})
}

// Between the passes of a watch, without a terminal, a log line says how the watch stands,
// at most once a minute however often the passes come.
func TestLogProgressWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		p := newProgress(&bytes.Buffer{}, false, slog.New(slog.NewJSONHandler(&logs, nil)))
		w, ok := p.(ingest.Watcher)
		if !ok {
			t.Fatalf("%T is not an ingest.Watcher", p)
		}
		for i := range 30 { // a pass every 5 s for 150 s: lines at 0, 60 and 120 s
			w.Waiting(ingest.WatchStatus{Settled: int64(i), Pending: 100 - int64(i), GivenUp: 1, Next: time.Now().Add(5 * time.Second)})
			time.Sleep(5 * time.Second)
		}
		var settled []float64
		for line := range strings.Lines(logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if m["msg"] != "fetch watching" || m["pending"] != 100-m["settled"].(float64) || m["given_up"] != 1.0 || m["next_in_s"] != 5.0 {
				t.Errorf("log line %v, want fetch watching with the figures", m)
			}
			settled = append(settled, m["settled"].(float64))
		}
		if diff := cmp.Diff([]float64{0, 12, 24}, settled); diff != "" {
			t.Errorf("watch lines at passes (-want +got):\n%s", diff)
		}
	})
}

// On a terminal a watch shows one status line between passes, which the next pass's bar,
// and the end of the run, clear.
func TestBarProgressWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		p := newProgress(&out, true, slog.New(slog.DiscardHandler))
		next := time.Date(2026, 3, 1, 12, 3, 5, 0, time.Local)
		p.(ingest.Watcher).Waiting(ingest.WatchStatus{Settled: 812, Pending: 188, GivenUp: 4, Next: next})
		if want := "\r\033[Kwatching: 812 settled, 188 pending, 4 given up; next check 12:03:05"; out.String() != want {
			t.Errorf("status line = %q, want %q", out.String(), want)
		}
		out.Reset()
		var counts fakeCounts
		p.Start(10, counts.get)
		p.Stop()
		if !strings.HasPrefix(out.String(), "\r\033[K") {
			t.Errorf("the next pass wrote %q, want the status line cleared first", out.String())
		}
		p.(ingest.Watcher).Waiting(ingest.WatchStatus{Next: next})
		out.Reset()
		endProgress(p)
		if out.String() != "\r\033[K" {
			t.Errorf("the end of the run wrote %q, want the status line cleared", out.String())
		}
	})
}
