package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batstat/batstat/smsbat"
)

// The pool's timing is tested in synctest bubbles: time.Now, timers and the token bucket
// run on the bubble's fake clock, which moves only when every goroutine waits, so each
// wait is asserted to the nanosecond and no test waits for real.

// t0 is the instant a synctest bubble starts at.
var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// The gate's arithmetic takes its instants as values and needs no clock.
func TestPauseGate(t *testing.T) {
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type pause struct {
		at time.Time
		d  time.Duration
	}
	tests := []struct {
		name   string
		pauses []pause
		at     time.Time
		want   time.Duration
	}{
		{"never paused", nil, t0, time.Unix(0, 0).Sub(t0)},
		{"paused", []pause{{t0, 2 * time.Second}}, sec(0.5), 1500 * time.Millisecond},
		{"pause over", []pause{{t0, 2 * time.Second}}, sec(2), 0},
		{"a shorter pause does not cut a longer one", []pause{{t0, 2 * time.Second}, {sec(1), 500 * time.Millisecond}}, t0, 2 * time.Second},
		{"a longer pause extends", []pause{{t0, 2 * time.Second}, {sec(1), 5 * time.Second}}, t0, 6 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g pauseGate
			for _, p := range tt.pauses {
				g.pause(p.at, p.d)
			}
			if got := g.left(tt.at); got != tt.want {
				t.Errorf("left(%v) = %v, want %v", tt.at.Sub(t0), got, tt.want)
			}
		})
	}
}

func TestPauseGateWaitsForEveryPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g pauseGate
		if err := g.wait(t.Context()); err != nil || time.Since(t0) != 0 {
			t.Fatalf("wait on an open gate = %v after %v, want nil at once", err, time.Since(t0))
		}
		g.pause(time.Now(), time.Second)
		time.AfterFunc(500*time.Millisecond, func() { // a 429 received half-way through the first pause
			g.pause(time.Now(), 2*time.Second)
		})
		if err := g.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(t0), 2500*time.Millisecond; got != want {
			t.Errorf("wait returned after %v, want %v: the end of the later pause", got, want)
		}

		g.pause(time.Now(), time.Hour)
		ctx, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("interrupt")
		time.AfterFunc(time.Second, func() { cancel(cause) })
		start := time.Now()
		if err := g.wait(ctx); !errors.Is(err, cause) || time.Since(start) != time.Second {
			t.Errorf("wait = %v after %v, want the cancel cause after 1s", err, time.Since(start))
		}
	})
}

// reply is how fakeAPI answers one request.
type reply struct {
	code       int           // 0 resets the connection; -1 refuses it; 299 sends a 200 whose body is not a status
	retryAfter string        // the Retry-After header, if any
	latency    time.Duration // from the start of the request to its answer
}

// sent is one request fakeAPI received.
type sent struct {
	id         string
	n          int // the request's 1-based number for its ID
	start, end time.Time
	code       int
}

// fakeAPI is an http.RoundTripper that answers in memory: answer says what the n-th request
// for an ID gets. It records every request with its start and answer times.
type fakeAPI struct {
	answer func(id string, n int) reply

	mu   sync.Mutex
	n    map[string]int
	reqs []sent
}

func (a *fakeAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	id, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/bat/message/"))
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	a.n[id]++
	n := a.n[id]
	a.mu.Unlock()
	rep := a.answer(id, n)
	select {
	case <-time.After(rep.latency):
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	a.mu.Lock()
	a.reqs = append(a.reqs, sent{id: id, n: n, start: start, end: time.Now(), code: rep.code})
	a.mu.Unlock()

	code, body := rep.code, `{"error":{"code":"E","message":"fault"}}`
	switch rep.code {
	case 0:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case -1:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case http.StatusOK:
		body = `{"deliverystatus":"delivered"}`
	case 299:
		code, body = http.StatusOK, `<html>proxy error</html>`
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if rep.retryAfter != "" {
		h.Set("Retry-After", rep.retryAfter)
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// requests returns the requests received so far, in the order they were answered.
func (a *fakeAPI) requests() []sent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]sent(nil), a.reqs...)
}

// poolConfig is a pool of 4 workers without a rate limit, with every setting the timing
// depends on spelled out.
func poolConfig() Config {
	return Config{
		Concurrency:    4,
		Retries:        5,
		MaxRetryAfter:  5 * time.Second,
		BackoffInitial: 100 * time.Millisecond,
		BackoffMax:     time.Second,
	}
}

// runPool runs the worker pool over ids against api, in the calling bubble, and returns
// the outcomes in the order they came out.
func runPool(t *testing.T, ctx context.Context, cfg Config, api *fakeAPI, ids []string) ([]outcome, *counters, error) {
	t.Helper()
	return runPoolCut(t, ctx, cfg, api, ids, 0)
}

// runPoolCut is runPool with a cut outcome after the cutAt-th message taken (0: none).
func runPoolCut(t *testing.T, ctx context.Context, cfg Config, api *fakeAPI, ids []string, cutAt int64) ([]outcome, *counters, error) {
	t.Helper()
	var err error
	cfg.APIURL = "http://smsbat.test"
	cfg.Client, err = smsbat.NewClient(cfg.APIURL, smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: "k"},
		&http.Client{Transport: api})
	if err != nil {
		t.Fatal(err)
	}
	f := &fetcher{cfg: &cfg, lim: newLimiter(cfg.Rate, cfg.Burst), stats: &counters{}}
	in := make(chan todoItem)
	go func() {
		defer close(in)
		for _, id := range ids {
			select {
			case in <- todoItem{id: id}:
			case <-ctx.Done():
				return
			}
		}
	}()
	out := make(chan outcome, len(ids)+1)
	reqCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	err = f.fetchAll(ctx, reqCtx, stop, in, out, cutAt)
	close(out)
	var outs []outcome
	for o := range out {
		outs = append(outs, o)
	}
	return outs, f.stats, err
}

// The pool sends one cut outcome, when it takes the cutAt-th message, and none without
// cutAt; every message is still answered once.
func TestPoolSendsOneCut(t *testing.T) {
	for _, cutAt := range []int64{0, 1, 7, 10, 11} {
		synctest.Test(t, func(t *testing.T) {
			api := &fakeAPI{answer: func(string, int) reply { return reply{latency: 10 * time.Millisecond, code: http.StatusOK} }}
			outs, _, err := runPoolCut(t, t.Context(), poolConfig(), api, messageIDs(10), cutAt)
			if err != nil {
				t.Fatal(err)
			}
			cuts, answers := 0, 0
			for _, o := range outs {
				if o.cut {
					cuts++
				} else if o.status != nil {
					answers++
				}
			}
			want := 0
			if cutAt >= 1 && cutAt <= 10 {
				want = 1
			}
			if cuts != want || answers != 10 {
				t.Errorf("cutAt %d: %d cuts and %d answers, want %d and 10", cutAt, cuts, answers, want)
			}
		})
	}
}

// messageIDs returns m00, m01, ... m(n-1).
func messageIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%02d", i)
	}
	return ids
}

// One message's first request is answered after 5 ms with a 429 (or a 503) while the
// other workers' requests are still on the wire (they take 10 ms): a 429 must hold every
// worker until its Retry-After has passed, and then release them all at once; a 503's
// Retry-After delays only its own message.
func TestPoolRetryAfterHoldsEveryWorker(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		retryAfter string
		wait       time.Duration // from the answer of the 429 (at 5 ms) to the next request
		pausesAll  bool
	}{
		{"429 with seconds", 429, "2", 2 * time.Second, true},
		{"429 with an HTTP date", 429, "Sat, 01 Jan 2000 00:00:03 GMT", 3*time.Second - 5*time.Millisecond, true},
		{"429 capped by MaxRetryAfter", 429, "3600", 5 * time.Second, true},
		{"503 with seconds", 503, "2", 2 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRetryAfter(t, tt.code, tt.retryAfter, tt.wait, tt.pausesAll) })
		})
	}
}

func testRetryAfter(t *testing.T, code int, retryAfter string, wait time.Duration, pausesAll bool) {
	const limited = "m01" // the second message: the first request of its worker
	api := &fakeAPI{answer: func(id string, n int) reply {
		if id == limited && n == 1 {
			return reply{code: code, retryAfter: retryAfter, latency: 5 * time.Millisecond}
		}
		return reply{code: http.StatusOK, latency: 10 * time.Millisecond}
	}}
	cfg := poolConfig()
	ids := messageIDs(12)
	outs, stats, err := runPool(t, t.Context(), cfg, api, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(ids) || stats.errored.Load() != 0 {
		t.Fatalf("%d outcomes, %d failed; want %d answered", len(outs), stats.errored.Load(), len(ids))
	}

	reqs := api.requests()
	limitedAt := reqs[0].end // the 429 is answered first
	if reqs[0].id != limited || reqs[0].code != code || !limitedAt.Equal(t0.Add(5*time.Millisecond)) {
		t.Fatalf("first answer = %+v, want the %d for %s at 5ms", reqs[0], code, limited)
	}
	resume := limitedAt.Add(wait)
	var during, atResume []string
	var retry time.Time
	for _, r := range reqs {
		switch {
		case r.id == limited && r.n == 2:
			retry = r.start
		case r.start.After(limitedAt) && r.start.Before(resume):
			during = append(during, r.id)
		}
		if r.start.Equal(resume) {
			atResume = append(atResume, r.id)
		}
	}
	if !retry.Equal(resume) {
		t.Errorf("%s asked again %v after its %d, want %v", limited, retry.Sub(limitedAt), code, wait)
	}
	if pausesAll {
		if len(during) > 0 {
			t.Errorf("requests for %v started within the %v a 429 asked every worker to wait", during, wait)
		}
		if len(atResume) != cfg.Concurrency {
			t.Errorf("requests started when the pause ended: %v, want one per worker (%d)", atResume, cfg.Concurrency)
		}
	} else if len(during) != len(ids)-cfg.Concurrency {
		t.Errorf("requests started while %s waited out its %d: %v, want the %d messages not started before it",
			limited, code, during, len(ids)-cfg.Concurrency)
	}
}

// Between the attempts of one message the pool waits the exponential backoff: the k-th
// wait is InitialInterval·2^(k-1), capped at BackoffMax, with ±50% jitter, whatever the
// retryable failure (a 429 with Retry-After: 0 included).
func TestPoolBacksOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faults := []reply{{code: 500}, {code: 0}, {code: 503}, {code: 299}, {code: 429, retryAfter: "0"}, {code: 502}, {code: 500}}
		api := &fakeAPI{answer: func(id string, n int) reply {
			if n <= len(faults) {
				return faults[n-1]
			}
			return reply{code: http.StatusOK}
		}}
		cfg := poolConfig()
		cfg.Retries = len(faults)
		outs, stats, err := runPool(t, t.Context(), cfg, api, []string{"m"})
		if err != nil {
			t.Fatal(err)
		}
		reqs := api.requests()
		if len(outs) != 1 || outs[0].failure != nil || outs[0].attempts != len(faults)+1 || len(reqs) != len(faults)+1 {
			t.Fatalf("outcomes %+v after %d requests, want one answer after %d attempts", outs, len(reqs), len(faults)+1)
		}
		if last := reqs[len(reqs)-1].end; !outs[0].at.Equal(last) {
			t.Errorf("answer recorded at %v, want %v, when it was received", outs[0].at, last)
		}
		if stats.retries.Load() != int64(len(faults)) || stats.rateLimited.Load() != 1 {
			t.Errorf("retries = %d, rate limited = %d; want %d and 1", stats.retries.Load(), stats.rateLimited.Load(), len(faults))
		}
		interval := cfg.BackoffInitial
		for k := 1; k < len(reqs); k++ {
			gap := reqs[k].start.Sub(reqs[k-1].end)
			if gap < interval/2 || gap > interval*3/2 {
				t.Errorf("wait after attempt %d (HTTP %d) = %v, want %v ± 50%%", k, reqs[k-1].code, gap, interval)
			}
			interval = min(2*interval, cfg.BackoffMax)
		}
	})
}

// An interrupt ends the run at once, not when the pause of a 429 is over: a worker
// waiting at the gate stops, and the messages not yet answered produce no outcome.
func TestPoolInterruptDoesNotWaitOutAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAPI{answer: func(id string, n int) reply {
			if id == "m00" && n == 1 {
				return reply{code: 429, retryAfter: "60"}
			}
			return reply{code: http.StatusOK}
		}}
		cfg := poolConfig()
		cfg.Concurrency = 1
		cfg.MaxRetryAfter = time.Minute
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(time.Second, func() { cancel(errors.New("interrupt")) })
		outs, _, err := runPool(t, ctx, cfg, api, messageIDs(5))
		if err != nil {
			t.Errorf("fetchAll = %v, want nil: an interrupt is not a fatal error", err)
		}
		if len(outs) != 0 || len(api.requests()) != 1 || time.Since(t0) != time.Second {
			t.Errorf("%d outcomes, %d requests, returned after %v; want none, 1, and 1s: at the interrupt",
				len(outs), len(api.requests()), time.Since(t0))
		}
	})
}

// An API that no attempt reaches stops the run after unreachableAttempts attempts of a
// message, about a second in with the default backoff; a network that fails once the API
// has answered, or only for the first attempt or two, is retried as usual.
func TestPoolStopsWhenTheAPIIsUnreachable(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(id string, n int) reply
		retries int
		fatal   bool
	}{
		{"never reached", func(string, int) reply { return reply{code: -1} }, 5, true},
		{"never reached, no retries", func(string, int) reply { return reply{code: -1} }, 0, true},
		{"reached at the third attempt", func(id string, n int) reply {
			if n < unreachableAttempts {
				return reply{code: -1}
			}
			return reply{code: http.StatusOK}
		}, 5, false},
		{"lost after the first answer", func(id string, n int) reply {
			if id == "m00" {
				return reply{code: http.StatusOK}
			}
			if n < 5 {
				return reply{code: -1, latency: 50 * time.Millisecond}
			}
			return reply{code: http.StatusOK}
		}, 5, false},
		{"resets are not unreachable", func(id string, n int) reply {
			if n < 4 {
				return reply{code: 0}
			}
			return reply{code: http.StatusOK}
		}, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := poolConfig()
				cfg.Retries = tt.retries
				cfg.Concurrency = 1
				cfg.BackoffInitial = 250 * time.Millisecond
				api := &fakeAPI{answer: tt.answer}
				ids := messageIDs(8)
				outs, _, err := runPool(t, t.Context(), cfg, api, ids)
				var ue *UnreachableError
				if !tt.fatal {
					if err != nil || len(outs) != len(ids) {
						t.Fatalf("fetchAll = %v with %d outcomes, want no error and %d", err, len(outs), len(ids))
					}
					for _, o := range outs {
						if o.failure != nil {
							t.Errorf("%s failed: %v", o.id, o.failure.err)
						}
					}
					return
				}
				if !errors.As(err, &ue) || ue.URL != "http://smsbat.test" || !strings.Contains(err.Error(), "connection refused") ||
					strings.Contains(err.Error(), "/bat/message/") {
					t.Fatalf("fetchAll = %v, want an *UnreachableError naming the API URL and the cause", err)
				}
				want := min(unreachableAttempts, tt.retries+1)
				if n := len(api.requests()); n != want || len(outs) != 0 {
					t.Errorf("%d requests, %d outcomes; want the run stopped after %d attempts and no message given up", n, len(outs), want)
				}
				// 250 ms and 500 ms of backoff, ±50%.
				if d := time.Since(t0); d > 1125*time.Millisecond {
					t.Errorf("the run stopped after %v, want about a second", d)
				}
			})
		})
	}
}
