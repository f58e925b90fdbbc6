package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// fixture is a fake API, a fresh database and an input file of n IDs.
type fixture struct {
	srv *smsbattest.Server // nil in a synctest bubble
	// api is the fake's handler: srv's, or in a bubble the one rt answers with.
	api   *smsbattest.Handler
	rt    http.RoundTripper
	db    *store.DB
	input string
	ids   []string
}

func newFixture(t *testing.T, opts smsbattest.Options, n int) *fixture {
	t.Helper()
	srv := smsbattest.NewServer(t, opts)
	f := newFixtureFor(t, srv.Handler, n)
	f.srv = srv
	return f
}

// newBubbleFixture is newFixture for a test in a synctest bubble, where the fake answers
// through an in-memory transport: the bubble's clock stands still while one of its
// goroutines waits on a socket.
func newBubbleFixture(t *testing.T, opts smsbattest.Options, n int) *fixture {
	t.Helper()
	h := smsbattest.NewHandler(opts)
	f := newFixtureFor(t, h, n)
	f.rt = smsbattest.InProcessTransport(h)
	return f
}

func newFixtureFor(t *testing.T, api *smsbattest.Handler, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{api: api}
	var b strings.Builder
	b.WriteString("message_id,campaign\n")
	for i := range n {
		id := fmt.Sprintf("msg-%06d", i)
		f.ids = append(f.ids, id)
		fmt.Fprintf(&b, "%s,camp-%d\n", id, i%3)
	}
	f.input = filepath.Join(dir, "ids.csv")
	if err := os.WriteFile(f.input, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), filepath.Join(dir, "test.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	return f
}

func (f *fixture) config(t *testing.T) ingest.Config {
	cfg := ingest.Config{
		Inputs:         []string{f.input},
		Concurrency:    8,
		Rate:           0,
		Retries:        5,
		Timeout:        5 * time.Second,
		BackoffInitial: time.Millisecond,
		BackoffMax:     5 * time.Millisecond,
	}
	if f.srv != nil {
		cfg.Client, cfg.APIURL = f.srv.NewClient(t, smsbat.AuthHeader), f.srv.URL
	} else {
		cfg.Client, cfg.APIURL = f.clientVia(t, f.rt), bubbleURL
	}
	return cfg
}

// bubbleURL is the fake's base URL in a bubble; no request leaves the process.
const bubbleURL = "http://smsbat.test"

// clientVia returns a client of the in-memory fake whose requests go through rt.
func (f *fixture) clientVia(t *testing.T, rt http.RoundTripper) *smsbat.Client {
	t.Helper()
	c, err := smsbat.NewClient(bubbleURL, f.api.Auth(smsbat.AuthHeader), &http.Client{Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func count(t *testing.T, db *store.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// latest returns message_id → latest deliverystatus.
func latest(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	rows, err := db.Query(`SELECT message_id, coalesce(deliverystatus, '') FROM message_status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			t.Fatal(err)
		}
		m[id] = st
	}
	return m
}

// wantAfter is what the fake answers for id at its poll-th answered request.
func wantAfter(h *smsbattest.Handler, id string, poll int) string {
	a := h.AnswerAt(id, poll)
	if a.Code == http.StatusNotFound {
		return smsbat.StatusNotFound
	}
	return a.Status.DeliveryStatus
}

func TestFetchStoresEveryAnswer(t *testing.T) {
	f := newFixture(t, smsbattest.DefaultOptions(), 500)
	sum, err := ingest.Fetch(context.Background(), f.db, f.config(t))
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if sum.Outcome != ingest.OutcomeOK || sum.Requested != 500 || sum.Answered != 500 || sum.Failed != 0 {
		t.Fatalf("summary = %+v, want ok with 500 requested and answered", sum)
	}
	got := latest(t, f.db)
	var notFound int64
	for _, id := range f.ids {
		want := wantAfter(f.srv.Handler, id, 1)
		if want == smsbat.StatusNotFound {
			notFound++
		}
		if got[id] != want {
			t.Errorf("status of %s = %q, want %q", id, got[id], want)
		}
	}
	if sum.NotFound != notFound {
		t.Errorf("NotFound = %d, want %d", sum.NotFound, notFound)
	}
	if n := count(t, f.db, `SELECT count(*) FROM status_checks`); n != 500 {
		t.Errorf("status_checks rows = %d, want 500", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM status_checks WHERE http_status = 404 AND deliverystatus = 'not_found'`); n != notFound {
		t.Errorf("404 rows = %d, want %d", n, notFound)
	}
	var outcome string
	var answered, requested int64
	if err := f.db.QueryRow(`SELECT outcome, answered, requested FROM runs WHERE run_id = ?`, sum.RunID).Scan(&outcome, &answered, &requested); err != nil {
		t.Fatal(err)
	}
	if outcome != "ok" || answered != 500 || requested != 500 {
		t.Errorf("runs row = %s %d/%d, want ok 500/500", outcome, answered, requested)
	}
}

func TestFetchMoneyAndExtendedFieldsExact(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.MaxPollsToFinal = 1
	opts.ExtendedRate = 1
	f := newFixture(t, opts, 200)
	if _, err := ingest.Fetch(context.Background(), f.db, f.config(t)); err != nil {
		t.Fatal(err)
	}
	var wantCost smsbat.Money
	for _, id := range f.ids {
		if a := f.srv.Handler.AnswerAt(id, 1); a.Status != nil && a.Status.Cost != nil {
			wantCost += *a.Status.Cost
		}
	}
	var got string
	if err := f.db.QueryRow(`SELECT sum(cost)::VARCHAR FROM status_checks`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != wantCost.String() {
		t.Errorf("sum(cost) = %s, want %s", got, wantCost)
	}
	// A fallback list and an extended status map survive as JSON, not as strings.
	id := f.ids[0]
	a := f.srv.Handler.AnswerAt(id, 1)
	if a.Status == nil || a.Status.ExtendedStatuses == nil {
		t.Skipf("%s has no extended answer", id)
	}
	var kind string
	if err := f.db.QueryRow(`SELECT json_type(extended_statuses) FROM status_checks WHERE message_id = ?`, id).Scan(&kind); err != nil {
		t.Fatal(err)
	}
	if kind != "OBJECT" {
		t.Errorf("json_type(extended_statuses) = %s, want OBJECT", kind)
	}
}

// The raw column keeps every body exactly as the server sent it, 404s included; invalid
// UTF-8, which a VARCHAR cannot hold, is replaced.
func TestFetchKeepsRawBodies(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.MaxPollsToFinal = 1
	const bad = "msg-000007"
	badBody := []byte("{\"deliverystatus\":\"delivered\",\"note\":\"caf\xe9 \xff\"}")
	opts.Hook = func(w http.ResponseWriter, _ *http.Request, id string, _ int) bool {
		if id != bad {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(badBody)
		return true
	}
	f := newFixture(t, opts, 300)
	if _, err := ingest.Fetch(context.Background(), f.db, f.config(t)); err != nil {
		t.Fatal(err)
	}
	rows, err := f.db.Query(`SELECT message_id, raw FROM status_checks`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen, notFound := 0, 0
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			t.Fatal(err)
		}
		seen++
		a := f.srv.Handler.AnswerAt(id, 1)
		want := string(a.Body)
		if id == bad {
			want = "{\"deliverystatus\":\"delivered\",\"note\":\"caf\uFFFD \uFFFD\"}"
		} else if a.Code == http.StatusNotFound {
			notFound++
		}
		if raw != want {
			t.Errorf("raw of %s = %q, want %q", id, raw, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(f.ids) || notFound == 0 {
		t.Errorf("checked %d raw bodies (%d of them 404s), want %d with some 404s", seen, notFound, len(f.ids))
	}
}

func TestFetchRetriesFaultsToExactResults(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.MaxPollsToFinal = 1
	opts.Fault429 = 0.15
	opts.Fault500 = 0.15
	opts.FaultGarbage = 0.1
	opts.RetryAfter = "0"
	f := newFixture(t, opts, 400)
	cfg := f.config(t)
	cfg.Retries = 20
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if sum.Failed != 0 || sum.Answered != 400 {
		t.Fatalf("summary = %+v, want all 400 answered", sum)
	}
	if sum.Retries == 0 || sum.RateLimited == 0 {
		t.Errorf("retries = %d, rate limited = %d; the faults should have caused both", sum.Retries, sum.RateLimited)
	}
	got := latest(t, f.db)
	for _, id := range f.ids {
		if want := wantAfter(f.srv.Handler, id, 1); got[id] != want {
			t.Errorf("status of %s = %q, want %q", id, got[id], want)
		}
	}
	if n := count(t, f.db, `SELECT count(*) FROM status_checks`); n != 400 {
		t.Errorf("status_checks rows = %d, want 400 (one answer per message)", n)
	}
}

func TestFetchGivesUpAndRecordsFetchErrors(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Hook = func(w http.ResponseWriter, r *http.Request, id string, n int) bool {
		switch {
		case strings.HasSuffix(id, "1"):
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `<html>bad gateway</html>`)
			return true
		case strings.HasSuffix(id, "2"):
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"INVALID_ID","message":"bad id"}}`)
			return true
		}
		return false
	}
	f := newFixture(t, opts, 30)
	cfg := f.config(t)
	cfg.Retries = 2
	// Batches of 4 outcomes cut by size alone: answers and failures of one batch, and the
	// counters, must commit together whatever the mix.
	cfg.BatchSize, cfg.FlushEvery = 4, time.Hour
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if sum.Outcome != ingest.OutcomePartial || sum.Failed != 6 {
		t.Fatalf("summary = %+v, want partial with 6 failed", sum)
	}
	if n := count(t, f.db, `SELECT (SELECT count(*) FROM status_checks) * 100 + (SELECT count(*) FROM fetch_errors)`); n != 24*100+6 {
		t.Errorf("stored %d answers and %d failures, want 24 and 6", n/100, n%100)
	}
	if n := count(t, f.db, `SELECT answered * 100 + failed FROM runs WHERE run_id = $1`, sum.RunID); n != 24*100+6 {
		t.Errorf("runs counts %d answered and %d failed, want 24 and 6", n/100, n%100)
	}
	for _, id := range []string{"msg-000001", "msg-000011", "msg-000021"} {
		if n := f.srv.CountFor(id); n != 3 {
			t.Errorf("requests for %s (500) = %d, want 3 (1 + 2 retries)", id, n)
		}
	}
	for _, id := range []string{"msg-000002", "msg-000012"} {
		if n := f.srv.CountFor(id); n != 1 {
			t.Errorf("requests for %s (400) = %d, want 1: a 400 is not retried", id, n)
		}
	}
	var kind, msg, body string
	var attempts, status int
	if err := f.db.QueryRow(`SELECT kind, http_status, attempts, error, last_body FROM fetch_errors WHERE message_id = 'msg-000001'`).
		Scan(&kind, &status, &attempts, &msg, &body); err != nil {
		t.Fatal(err)
	}
	if kind != "server_error" || status != 500 || attempts != 3 || !strings.Contains(body, "bad gateway") {
		t.Errorf("fetch_errors row = %s %d %d %q %q", kind, status, attempts, msg, body)
	}
	if err := f.db.QueryRow(`SELECT kind, http_status, attempts FROM fetch_errors WHERE message_id = 'msg-000002'`).
		Scan(&kind, &status, &attempts); err != nil {
		t.Fatal(err)
	}
	if kind != "client_error" || status != 400 || attempts != 1 {
		t.Errorf("fetch_errors row for the 400 = %s %d %d, want client_error 400 1", kind, status, attempts)
	}
}

func TestFetchStopsOnUnauthorized(t *testing.T) {
	f := newFixture(t, smsbattest.Options{APIKey: "right"}, 2000)
	cfg := f.config(t)
	var err error
	cfg.Client, err = smsbat.NewClient(f.srv.URL, smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: "wrong-secret-KEY"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	var ae *ingest.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("Fetch error = %v, want *AuthError", err)
	}
	if got := f.srv.Count(); got > int64(2*cfg.Concurrency) {
		t.Errorf("requests after a 401 = %d, want at most %d: the run must stop at once", got, 2*cfg.Concurrency)
	}
	if sum == nil || sum.Outcome != ingest.OutcomeFailed {
		t.Fatalf("summary = %+v, want outcome failed", sum)
	}
	if n := count(t, f.db, `SELECT count(*) FROM status_checks`); n != 0 {
		t.Errorf("status_checks rows = %d, want 0 from a run never authorised", n)
	}
	var runErr string
	if err := f.db.QueryRow(`SELECT error FROM runs WHERE run_id = ?`, sum.RunID).Scan(&runErr); err != nil {
		t.Fatal(err)
	}
	for _, where := range []string{logs.String(), err.Error(), runErr} {
		if strings.Contains(where, "wrong-secret-KEY") {
			t.Errorf("the API key leaked into %q", where)
		}
	}
}

// sendLog records when each request leaves the client.
type sendLog struct {
	mu    sync.Mutex
	times []time.Time
	next  http.RoundTripper
}

func (l *sendLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.times = append(l.times, time.Now())
	l.mu.Unlock()
	return l.next.RoundTrip(r)
}

// maxInWindow is the largest number of times within any window of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	times = slices.Clone(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i := range times {
		j := sort.Search(len(times), func(k int) bool { return !times[k].Before(times[i].Add(w)) })
		most = max(most, j-i)
	}
	return most
}

// The token bucket bounds the whole run, retries included, to rate + burst requests in
// any one-second window, as the client sends them and as the server receives them. The
// run is timed on a synctest bubble's clock, so the windows are exact.
func TestFetchRateBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := smsbattest.DefaultOptions()
		opts.KeepLog = true
		opts.Latency = 10 * time.Millisecond
		opts.Fault500 = 0.1 // retries count against the same bucket
		f := newBubbleFixture(t, opts, 150)
		cfg := f.config(t)
		cfg.Concurrency = 32
		cfg.Rate, cfg.Burst = 50, 5
		sent := &sendLog{next: f.rt}
		cfg.Client = f.clientVia(t, sent)
		sum, err := ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Retries == 0 {
			t.Fatal("no retries: the test would not show that retries share the bucket")
		}
		var seen []time.Time
		for _, r := range f.api.Requests() {
			seen = append(seen, r.Time)
		}
		if len(seen) != len(sent.times) || len(seen) != 150+int(sum.Retries) {
			t.Errorf("server saw %d requests, client sent %d, want %d (150 + %d retries)", len(seen), len(sent.times), 150+sum.Retries, sum.Retries)
		}
		for side, times := range map[string][]time.Time{"client": sent.times, "server": seen} {
			if got := maxInWindow(times, time.Second); got > 55 {
				t.Errorf("%s side: max requests in a one-second window = %d, want <= 55 (rate 50 + burst 5)", side, got)
			}
		}
		// And no slower: with 32 workers the bucket alone sets the pace, so the last
		// request starts when its token comes, (n - burst) / rate after the first.
		span := slices.MaxFunc(seen, time.Time.Compare).Sub(slices.MinFunc(seen, time.Time.Compare))
		if want := time.Duration(len(seen)-5) * time.Second / 50; span < want-time.Millisecond || span > want+time.Millisecond {
			t.Errorf("%d requests took %v, want %v: the bucket's pace", len(seen), span, want)
		}
	})
}

// A 429 with Retry-After holds every worker, not only the one that got it: while the
// other workers' requests are answered, none of them starts another until the pause is
// over, and then they all start at once.
func TestFetchHonoursRetryAfterAcrossWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := smsbattest.DefaultOptions()
		opts.KeepLog = true
		opts.Latency = 10 * time.Millisecond
		var limitedAt time.Time
		opts.Hook = func(w http.ResponseWriter, r *http.Request, id string, n int) bool {
			if id == "msg-000000" && n == 1 {
				limitedAt = time.Now()
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		}
		f := newBubbleFixture(t, opts, 40)
		cfg := f.config(t)
		sum, err := ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		reqs := f.api.Requests()
		if len(reqs) != 41 || sum.RateLimited != 1 {
			t.Fatalf("requests = %d with %d rate limited, want 41 with 1", len(reqs), sum.RateLimited)
		}
		resume := limitedAt.Add(time.Second)
		atResume := 0
		for _, r := range reqs {
			if r.Time.After(limitedAt) && r.Time.Before(resume) {
				t.Errorf("request for %s came %v after a 429 with Retry-After: 1", r.ID, r.Time.Sub(limitedAt))
			}
			if r.Time.Equal(resume) {
				atResume++
			}
		}
		if atResume != cfg.Concurrency {
			t.Errorf("%d requests started when the pause ended, want one per worker (%d)", atResume, cfg.Concurrency)
		}
	})
}

func TestFetchIncremental(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.MaxPollsToFinal = 3
	f := newFixture(t, opts, 300)
	ctx := context.Background()
	if _, err := ingest.Fetch(ctx, f.db, f.config(t)); err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, st := range latest(t, f.db) {
		if !smsbat.IsTerminal(st) {
			pending++
		}
	}
	before := f.srv.Count()
	sum, err := ingest.Fetch(ctx, f.db, f.config(t))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requested != int64(pending) || f.srv.Count()-before != int64(pending) {
		t.Errorf("second run asked %d (requests %d), want the %d pending", sum.Requested, f.srv.Count()-before, pending)
	}
	if sum.NewMessages != 0 {
		t.Errorf("second run added %d messages, want 0", sum.NewMessages)
	}
	got := latest(t, f.db)
	for _, id := range f.ids {
		if got[id] != wantAfter(f.srv.Handler, id, f.srv.CountFor(id)) {
			t.Errorf("status of %s = %q after %d polls", id, got[id], f.srv.CountFor(id))
		}
	}
	cfg := f.config(t)
	cfg.Refresh = ingest.RefreshAll
	sum, err = ingest.Fetch(ctx, f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requested != 300 {
		t.Errorf("--refresh all asked %d, want 300", sum.Requested)
	}
	if n := count(t, f.db, `SELECT count(*) FROM runs WHERE outcome = 'ok'`); n != 3 {
		t.Errorf("ok runs = %d, want 3", n)
	}
	// Each message has one latest answer, that of its last check, however often it was
	// asked; the first run's batches had no earlier answer to replace, the later ones did.
	if n := count(t, f.db, `
		SELECT count(*) FROM status_latest l
		JOIN (SELECT message_id, max(checked_at) AS at FROM status_checks GROUP BY message_id) c
		  ON c.message_id = l.message_id AND c.at = l.checked_at`); n != 300 {
		t.Errorf("status_latest rows that are their message's last check = %d, want 300", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM status_latest`); n != 300 {
		t.Errorf("status_latest has %d rows, want 300 (one per message)", n)
	}
}

func TestFetchInterruptedKeepsAnswers(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("test interrupt")
	opts := smsbattest.DefaultOptions()
	opts.Latency = 20 * time.Millisecond
	var served atomic.Int64
	opts.Hook = func(http.ResponseWriter, *http.Request, string, int) bool {
		if served.Add(1) == 100 { // interrupt mid-run, with requests in flight
			cancel(cause)
		}
		return false
	}
	f := newFixture(t, opts, 2000)
	cfg := f.config(t)
	sum, err := ingest.Fetch(ctx, f.db, cfg)
	if !errors.Is(err, cause) {
		t.Fatalf("Fetch error = %v, want the cancel cause", err)
	}
	if sum.Outcome != ingest.OutcomeInterrupted {
		t.Errorf("outcome = %s, want interrupted", sum.Outcome)
	}
	// Every request the server answered with a status is stored: in-flight requests were
	// waited for, not dropped.
	stored := count(t, f.db, `SELECT count(*) FROM status_checks`)
	if stored == 0 || stored == 2000 || stored != f.srv.Count() {
		t.Errorf("stored %d answers for %d requests, want all answered requests stored and the run cut short", stored, f.srv.Count())
	}
	if n := count(t, f.db, `SELECT answered FROM runs WHERE run_id = ?`, sum.RunID); n != stored {
		t.Errorf("runs.answered = %d, want %d", n, stored)
	}
	// The next run completes the job, asking only what is missing or pending.
	cfg.Concurrency = 64
	sum2, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Requested >= 2000 || sum2.Failed != 0 {
		t.Errorf("resume = %+v, want fewer than 2000 requested and none failed", sum2)
	}
	if n := count(t, f.db, `SELECT count(*) FROM message_status WHERE deliverystatus IS NULL`); n != 0 {
		t.Errorf("%d messages still unanswered after the resume", n)
	}
}

// recordedProgress records what a run tells its Progress.
type recordedProgress struct {
	mu            sync.Mutex
	starts, stops int
	total         int64
	counts        func() ingest.Counts
	atStop        ingest.Counts
	requestsSeen  int64 // server requests when Start was called
	server        *smsbattest.Server
}

func (p *recordedProgress) Start(total int64, counts func() ingest.Counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	p.total, p.counts = total, counts
	p.requestsSeen = p.server.Count()
}

func (p *recordedProgress) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops++
	p.atStop = p.counts()
}

func TestFetchReportsProgress(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Fault500 = 0.2
	f := newFixture(t, opts, 100)
	cfg := f.config(t)
	prog := &recordedProgress{server: f.srv}
	cfg.Progress = prog
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prog.starts != 1 || prog.stops != 1 {
		t.Fatalf("Progress started %d and stopped %d times, want once each", prog.starts, prog.stops)
	}
	if prog.total != 100 || prog.requestsSeen != 0 {
		t.Errorf("Start(total %d) after %d requests, want total 100 before any request", prog.total, prog.requestsSeen)
	}
	want := ingest.Counts{Requests: sum.Requests, Done: 100, Errored: sum.Failed, Retries: sum.Retries, RateLimited: sum.RateLimited}
	if diff := cmp.Diff(want, prog.atStop); diff != "" || sum.Retries == 0 {
		t.Errorf("counts at Stop (-want +got):\n%s(summary %+v: want some retries)", diff, sum)
	}
}

// The summary counts every attempt by the HTTP status it got, 0 for none, exactly as the
// transport saw them, and names the campaigns of the input.
func TestFetchCountsResponsesByStatus(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.MaxPollsToFinal = 1
	opts.Fault429 = 0.1
	opts.Fault500 = 0.1
	opts.FaultGarbage = 0.1
	opts.FaultReset = 0.1
	opts.RetryAfter = "0"
	// In memory: a reset reaches the client as it left the server, where Go's transport
	// would resend some by itself on a real socket.
	f := newBubbleFixture(t, opts, 300)
	wire := &statusLog{rt: f.rt, seen: map[int]int64{}}
	cfg := f.config(t)
	cfg.Client = f.clientVia(t, wire)
	cfg.Retries = 30
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if diff := cmp.Diff(wire.seen, sum.Responses); diff != "" {
		t.Errorf("Responses differ from the transport's (-transport +summary):\n%s", diff)
	}
	var total int64
	for _, code := range []int{0, 200, 404, 429, 500} {
		if sum.Responses[code] == 0 {
			t.Errorf("Responses[%d] = 0; the faults and the fake's not-found IDs should have produced it", code)
		}
	}
	for _, n := range wire.seen {
		total += n
	}
	if sum.Requests != total {
		t.Errorf("Requests = %d, want %d (the transport's count)", sum.Requests, total)
	}
	if want := []string{"camp-0", "camp-1", "camp-2"}; !slices.Equal(sum.Campaigns, want) {
		t.Errorf("Campaigns = %q, want %q", sum.Campaigns, want)
	}
}

// statusLog counts the round trips it passes on by the status answered, 0 for an error.
type statusLog struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	seen map[int]int64
}

func (l *statusLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	code := 0
	if err == nil {
		code = resp.StatusCode
	}
	l.mu.Lock()
	l.seen[code]++
	l.mu.Unlock()
	return resp, err
}
