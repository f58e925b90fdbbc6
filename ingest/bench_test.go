package ingest

// Benchmarks of the fetch pipeline against batstat's speed and memory targets.
// BENCHMARKS.md at the repository root has the targets, the commands, the figures measured
// and what limits each. They are benchmarks only: nothing here runs in a
// plain `go test`, and every one skips under -short.
//
//	go test -run '^$' -bench 'FetchEndToEnd|BareHTTPLoop|ClientLoop' -benchtime 3x -count 5 ./ingest/
//	go test -run '^$' -bench FetchRateLimited -benchtime 1x -count 5 ./ingest/
//	go test -run '^$' -bench Writer -benchtime 3x -count 5 ./ingest/

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

const (
	// e2eMessages and e2eConcurrency are shared by the end-to-end benchmark and the bare
	// HTTP loops it is compared with.
	e2eMessages    = 50_000
	e2eConcurrency = 16

	rateMessages    = 2_000
	rateConcurrency = 32 // 200/s at 50 ms needs 10 in flight; 32 leaves room
	rateTarget      = 200.0
	rateLatency     = 50 * time.Millisecond

	writerOutcomes = 500_000
)

func benchSkipShort(b *testing.B) {
	b.Helper()
	if testing.Short() {
		b.Skip("benchmark skipped in -short mode")
	}
}

// benchID is the n-th message ID of every benchmark: the shape of a provider's ID.
func benchID(i int) string { return fmt.Sprintf("msg-%09d-7f3a9c", i) }

// benchWriteCSV writes an export of n messages as people have them (ID, campaign, phone, send
// time) into dir and returns its path and the IDs in file order.
func benchWriteCSV(b *testing.B, dir string, n int) (string, []string) {
	b.Helper()
	name := filepath.Join(dir, "ids.csv")
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	bw := bufio.NewWriter(f)
	bw.WriteString("messageId,campaign,phone,sent_at\n")
	for i := range n {
		ids[i] = benchID(i)
		fmt.Fprintf(bw, "%s,spring-%d,+38050%07d,2025-03-01T10:%02d:00Z\n", ids[i], i%5, i, i%60)
	}
	if err := errors.Join(bw.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
	return name, ids
}

// benchServer is a fake API on loopback that the caller closes, so that every iteration
// starts with a fresh handler (empty per-ID counters) and no connection of the last one.
type benchServer struct {
	*httptest.Server
	h *smsbattest.Handler
}

func newBenchServer(opts smsbattest.Options) *benchServer {
	h := smsbattest.NewHandler(opts)
	return &benchServer{Server: httptest.NewServer(h), h: h}
}

// ---------------------------------------------------------------------------------------
// Target 1: end-to-end statuses/s ≥ half of a bare HTTP client loop, no latency, no rate.

// BenchmarkFetchEndToEnd is a whole ingest.Fetch of 50,000 IDs — CSV read, staging and
// merge in DuckDB, 16 workers asking the fake API, the writer committing batches — on a
// fresh database file each iteration. statuses/s is answers stored per second of Fetch;
// opening the file (schema) and closing it (checkpoint) are outside the timer. load-ms is
// the part of Fetch before the first request (CSV read, staging, merge, todo table);
// close-ms is the checkpoint on close.
func BenchmarkFetchEndToEnd(b *testing.B) {
	benchSkipShort(b)
	input, _ := benchWriteCSV(b, b.TempDir(), e2eMessages)
	var r benchFetchRun
	for b.Loop() {
		b.StopTimer()
		r.add(benchFetchOnce(b, input, r.iters))
		b.StartTimer()
	}
	b.ReportMetric(float64(r.stored)/r.fetch.Seconds(), "statuses/s")
	b.ReportMetric(float64(r.load.Milliseconds())/float64(r.iters), "load-ms")
	b.ReportMetric(float64(r.closing.Milliseconds())/float64(r.iters), "close-ms")
}

// benchFetchRun adds up the iterations of BenchmarkFetchEndToEnd.
type benchFetchRun struct {
	iters                int
	fetch, load, closing time.Duration
	stored               int64
}

func (r *benchFetchRun) add(o benchFetchRun) {
	r.iters++
	r.fetch += o.fetch
	r.load += o.load
	r.closing += o.closing
	r.stored += o.stored
}

// benchPhaseLog is a slog.Handler that notes when Fetch logs "inputs loaded", the end of its
// load phase.
type benchPhaseLog struct{ loaded atomic.Int64 } // unix nanoseconds

func (p *benchPhaseLog) Enabled(context.Context, slog.Level) bool { return true }

func (p *benchPhaseLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "inputs loaded" {
		p.loaded.Store(r.Time.UnixNano())
	}
	return nil
}

func (p *benchPhaseLog) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *benchPhaseLog) WithGroup(string) slog.Handler      { return p }

// benchFetchOnce runs one Fetch of input against a fresh server and database and returns the
// time Fetch took, of which its load phase, the time closing the database took and the
// answers stored. It runs with the benchmark timer stopped and starts it around Fetch only.
func benchFetchOnce(b *testing.B, input string, iter int) benchFetchRun {
	b.Helper()
	srv := newBenchServer(smsbattest.DefaultOptions())
	defer srv.Close()
	hc := smsbat.NewHTTPClient(10*time.Second, e2eConcurrency)
	defer hc.CloseIdleConnections()
	client, err := smsbat.NewClient(srv.URL, srv.h.Auth(smsbat.AuthHeader), hc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("e2e-%d.duckdb", iter)), store.Options{MemoryLimit: MemoryLimit})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	phases := &benchPhaseLog{}
	cfg := Config{
		Client: client, APIURL: srv.URL, Inputs: []string{input},
		Concurrency: e2eConcurrency, Rate: 0, Retries: 5, Timeout: 10 * time.Second,
		Logger: slog.New(phases),
	}
	var r benchFetchRun
	b.StartTimer()
	start := time.Now()
	sum, err := Fetch(ctx, db, cfg)
	r.fetch = time.Since(start)
	b.StopTimer()
	if t := phases.loaded.Load(); t != 0 {
		r.load = time.Unix(0, t).Sub(start)
	}
	if err != nil {
		b.Fatalf("Fetch: %v", err)
	}
	if sum.Outcome != OutcomeOK || sum.Answered != e2eMessages {
		b.Fatalf("Fetch summary %+v: want ok with %d answered", sum, e2eMessages)
	}
	start = time.Now()
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	r.closing, r.stored = time.Since(start), sum.Answered
	return r
}

// BenchmarkBareHTTPLoop is the yardstick of BenchmarkFetchEndToEnd: the same server, the
// same IDs, the same concurrency and the same keep-alive tuned client, but goroutines doing
// nothing but GET + io.ReadAll.
func BenchmarkBareHTTPLoop(b *testing.B) { benchLoop(b, false) }

// BenchmarkClientLoop sits between the two: the bare loop, but through smsbat.Client.Status
// (URL building, headers, body limit, JSON decoding). What Fetch loses against it is the
// pipeline's own cost (load, pool, limiter, writer).
func BenchmarkClientLoop(b *testing.B) { benchLoop(b, true) }

// benchLoop runs benchBareOnce over e2eMessages IDs and reports statuses/s.
func benchLoop(b *testing.B, viaClient bool) {
	benchSkipShort(b)
	ids := make([]string, e2eMessages)
	for i := range ids {
		ids[i] = benchID(i)
	}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		total += benchBareOnce(b, ids, viaClient)
		b.StartTimer()
	}
	b.ReportMetric(float64(e2eMessages*b.N)/total.Seconds(), "statuses/s")
}

// benchBareOnce asks for every ID with e2eConcurrency goroutines against a fresh server and
// returns the time taken, the benchmark timer running only meanwhile. viaClient uses
// smsbat.Client.Status instead of raw GETs.
func benchBareOnce(b *testing.B, ids []string, viaClient bool) time.Duration {
	b.Helper()
	srv := newBenchServer(smsbattest.DefaultOptions())
	defer srv.Close()
	hc := smsbat.NewHTTPClient(10*time.Second, e2eConcurrency)
	defer hc.CloseIdleConnections()
	client, err := smsbat.NewClient(srv.URL, srv.h.Auth(smsbat.AuthHeader), hc)
	if err != nil {
		b.Fatal(err)
	}
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = client.URL(id)
	}
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for range e2eConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				var err error
				if viaClient {
					_, err = client.Status(ctx, ids[i])
					if errors.Is(err, smsbat.ErrNotFound) {
						err = nil
					}
				} else {
					err = benchBareGet(ctx, hc, urls[i])
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return d
}

func benchBareGet(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Authorization-Key", smsbattest.DefaultAPIKey)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		err = fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return err
}

// ---------------------------------------------------------------------------------------
// Target 2: with 50 ms of server latency and Rate 200 (default burst), achieve ≥ 97%.

// benchStartRecorder wraps an http.RoundTripper and notes when each request starts: the token
// bucket governs starts, so that is where its rate shows.
type benchStartRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	starts []time.Time
}

func (r *benchStartRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	t := time.Now()
	r.mu.Lock()
	r.starts = append(r.starts, t)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// BenchmarkFetchRateLimited is a whole Fetch of 2,000 IDs, 32 workers, Rate 200 with the
// default burst (200), against a fake server answering after 50 ms. Metrics:
//
//	req/s        requests / Fetch wall time (load and commits included, burst included)
//	steady-req/s request starts per second after the first second, when the burst is spent
//	steady/200   the ratio the target is about (≥ 0.97)
//	max-1s-reqs  most request starts in any sliding second (the bucket allows rate + burst)
func BenchmarkFetchRateLimited(b *testing.B) {
	benchSkipShort(b)
	input, _ := benchWriteCSV(b, b.TempDir(), rateMessages)
	var wall time.Duration
	var requests int64
	var steady, maxWindow []float64
	iter := 0
	for b.Loop() {
		b.StopTimer()
		opts := smsbattest.DefaultOptions()
		opts.Latency = rateLatency
		srv := newBenchServer(opts)
		rec := &benchStartRecorder{}
		hc := smsbat.NewHTTPClient(10*time.Second, rateConcurrency)
		rec.next = hc.Transport
		hc.Transport = rec
		client, err := smsbat.NewClient(srv.URL, srv.h.Auth(smsbat.AuthHeader), hc)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("rate-%d.duckdb", iter)), store.Options{MemoryLimit: MemoryLimit})
		if err != nil {
			b.Fatal(err)
		}
		iter++
		cfg := Config{
			Client: client, APIURL: srv.URL, Inputs: []string{input},
			Concurrency: rateConcurrency, Rate: rateTarget, Retries: 5, Timeout: 10 * time.Second,
		}
		b.StartTimer()
		start := time.Now()
		sum, err := Fetch(ctx, db, cfg)
		wall += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("Fetch: %v", err)
		}
		if sum.Outcome != OutcomeOK || sum.Answered != rateMessages {
			b.Fatalf("Fetch summary %+v: want ok with %d answered", sum, rateMessages)
		}
		requests += sum.Requests
		s, m := benchStartRates(rec.starts)
		steady = append(steady, s)
		maxWindow = append(maxWindow, float64(m))
		db.Close()
		hc.CloseIdleConnections()
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(requests)/wall.Seconds(), "req/s")
	b.ReportMetric(benchMedian(steady), "steady-req/s")
	b.ReportMetric(benchMedian(steady)/rateTarget, "steady/200")
	b.ReportMetric(benchMedian(maxWindow), "max-1s-reqs")
}

// benchStartRates returns the rate of request starts after the first second (past the burst)
// and the largest number of starts in any one-second window.
func benchStartRates(starts []time.Time) (steady float64, maxIn1s int) {
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	if len(starts) < 2 {
		return 0, len(starts)
	}
	first, last := starts[0], starts[len(starts)-1]
	from := first.Add(time.Second)
	n := 0
	for _, t := range starts {
		if !t.Before(from) {
			n++
		}
	}
	// n starts after from span n-1 intervals; count them over [from, last].
	if d := last.Sub(from).Seconds(); d > 0 {
		steady = float64(n) / d
	}
	j := 0
	for i, t := range starts {
		for t.Sub(starts[j]) >= time.Second {
			j++
		}
		maxIn1s = max(maxIn1s, i-j+1)
	}
	return steady, maxIn1s
}

func benchMedian(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ---------------------------------------------------------------------------------------
// Target 3: the writer stores ≥ 250k status rows per second.

// benchOutcomes builds n outcomes as the workers hand them to the writer: the fake API's
// final answers (status, money, fallbacks, extended statuses, raw body) for the demo's mix
// of IDs with extendedRate of them extended, 2% not found, and every failEvery-th a failure
// after its retries (0 for none).
func benchOutcomes(n int, extendedRate float64, failEvery int) []outcome {
	opts := smsbattest.DefaultOptions()
	opts.ExtendedRate = extendedRate
	h := smsbattest.NewHandler(opts)
	at := time.Now().UTC()
	out := make([]outcome, n)
	for i := range out {
		id := benchID(i)
		o := outcome{id: id, at: at, attempts: 1}
		switch e := h.Expected(id); {
		case failEvery > 0 && i%failEvery == failEvery-1:
			o.attempts, o.httpStatus = 6, http.StatusInternalServerError
			o.failure = &failure{
				kind: "server_error",
				err:  "gave up after 6 attempts: HTTP 500 Internal Server Error: INTERNAL_ERROR: internal server error",
				body: `{"error":{"code":"INTERNAL_ERROR","message":"internal server error"}}`,
			}
		case e.NotFound:
			o.httpStatus, o.body = http.StatusNotFound, e.Final.Body
			o.status = &smsbat.Status{DeliveryStatus: smsbat.StatusNotFound}
		default:
			o.httpStatus, o.status, o.body = http.StatusOK, e.Final.Status, e.Final.Body
		}
		out[i] = o
	}
	return out
}

// BenchmarkWriter feeds 500,000 pre-built outcomes as fast as the writer takes them through
// its real loop (newWriter, run, close) into a fresh database: Appender rows, JSON encoding
// of fallbacks and extended statuses, batches cut by Config's default size and time bounds,
// staged on one connection while the last commits on the other, the runs counter update
// and the transaction per batch. rows/s counts status_checks and fetch_errors rows stored
// per second. DuckDB runs with its defaults unless the case names a memory limit. Closing
// the database afterwards (the final checkpoint) is outside the timer; close-ms reports it.
func BenchmarkWriter(b *testing.B) {
	for _, c := range []struct {
		name        string
		extended    float64
		failEvery   int
		memoryLimit string
	}{
		{"demo-mix", 0.40, 100, ""},  // the demo's answers, 1% failures
		{"all-extended", 1.0, 0, ""}, // every answer extended: the widest rows
		// Under fetch's limit two staged batches of a row group each do not fit in memory
		// and spill; in a fetch the batches are cut by time long before they are that big.
		{"demo-mix-fetch-limit", 0.40, 100, MemoryLimit},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchSkipShort(b)
			outs := benchOutcomes(writerOutcomes, c.extended, c.failEvery)
			var body int64
			for i := range outs {
				body += int64(len(outs[i].body))
			}
			b.SetBytes(body)
			var total, closing time.Duration
			iter := 0
			for b.Loop() {
				b.StopTimer()
				ctx := context.Background()
				db, runID := openRunning(b, filepath.Join(b.TempDir(), fmt.Sprintf("w-%d.duckdb", iter)), store.Options{MemoryLimit: c.memoryLimit})
				iter++
				cfg := &Config{BatchSize: defaultBatchSize, FlushEvery: time.Second}
				in := make(chan outcome, 64) // the size the pool's outcomes channel has at concurrency 16
				b.StartTimer()
				start := time.Now()
				w, err := newWriter(ctx, db, runID, &counters{}, cfg)
				if err != nil {
					b.Fatal(err)
				}
				go sendAll(in, outs)
				if err := w.run(in); err != nil {
					b.Fatal(err)
				}
				if err := w.close(); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				var rows int64
				if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM status_checks) + (SELECT count(*) FROM fetch_errors)`).Scan(&rows); err != nil {
					b.Fatal(err)
				}
				if rows != writerOutcomes {
					b.Fatalf("stored %d rows, want %d", rows, writerOutcomes)
				}
				start = time.Now()
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				closing += time.Since(start)
				b.StartTimer()
			}
			b.ReportMetric(float64(writerOutcomes*b.N)/total.Seconds(), "rows/s")
			b.ReportMetric(float64(closing.Milliseconds())/float64(b.N), "close-ms")
		})
	}
}
