package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/batstat/batstat/smsbat"
)

// AuthError stops a run: the API rejected the credentials, so every further request would
// be rejected too.
type AuthError struct{ Err *smsbat.APIError }

func (e *AuthError) Error() string {
	return fmt.Sprintf("the API rejected the credentials (%v): check the API key or username/password and --auth", e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// UnreachableError stops a run that cannot reach the API at all: its first attempts all
// failed before any answer (the name did not resolve, the connection was refused, the TLS
// handshake failed; see smsbat.IsUnreachable), so every further attempt would fail alike.
type UnreachableError struct {
	URL string // the API's base URL
	Err error  // the last attempt's error, without the request's URL
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the API at %s: %v (check the API URL and the network)", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachableAttempts is how many attempts of one message must fail to reach the API,
// while no attempt of the run has reached it, before the run stops (at most Retries+1).
// With the default backoff the third attempt comes about a second after the first: long
// enough to ride out a blip as the run starts, short enough that a wrong URL or a closed
// port ends the run within seconds instead of after every message's retries. Once any
// attempt has reached the API the rule is off: a network that fails mid-run is retried.
const unreachableAttempts = 3

// fatal reports whether err stops the whole run.
func fatal(err error) bool {
	var ae *AuthError
	var ue *UnreachableError
	return errors.As(err, &ae) || errors.As(err, &ue)
}

// counters are updated by workers and read by progress reporting and the writer.
type counters struct {
	requested   atomic.Int64 // messages set out to ask, over every pass (runs.requested)
	requests    atomic.Int64 // HTTP attempts made
	asked       atomic.Int64 // messages asked at least once
	done        atomic.Int64 // messages finished (answered or failed), not necessarily stored
	errored     atomic.Int64 // messages finished as failures
	retries     atomic.Int64
	rateLimited atomic.Int64
	// byStatus counts attempts by the HTTP status answered, index 0 being no answer at
	// all (network error, timeout, undecodable head). A fixed array of atomics keeps the
	// per-request cost at one add, with no lock or map.
	byStatus [maxHTTPStatus + 1]atomic.Int64

	mu                         sync.Mutex
	answered, notFound, failed int64 // stored
}

func (c *counters) snapshot() Counts {
	return Counts{c.requests.Load(), c.done.Load(), c.errored.Load(), c.retries.Load(), c.rateLimited.Load()}
}

// maxHTTPStatus is the largest status code counted on its own; a larger one (not HTTP)
// counts as no answer.
const maxHTTPStatus = 599

// answeredWith counts one attempt answered with HTTP status code, 0 for none.
func (c *counters) answeredWith(code int) {
	if code < 0 || code > maxHTTPStatus {
		code = 0
	}
	c.byStatus[code].Add(1)
}

// statuses returns the attempts by HTTP status, only those seen; key 0 is no answer.
func (c *counters) statuses() map[int]int64 {
	m := make(map[int]int64)
	for code := range c.byStatus {
		if n := c.byStatus[code].Load(); n > 0 {
			m[code] = n
		}
	}
	return m
}

func (c *counters) stored(answered, notFound, failed int64) {
	c.mu.Lock()
	c.answered += answered
	c.notFound += notFound
	c.failed += failed
	c.mu.Unlock()
}

// pauseGate is the shared back-off: a 429 pauses every worker, not just the one that got
// it, so a rate-limited run slows down instead of retrying harder. pause and left take the
// time as a value: a pause counts from the instant its 429 was received, the instant the
// outcome records. wait reads the clock and sleeps through the time package.
type pauseGate struct{ until atomic.Int64 } // unix nanoseconds

// pause closes the gate until now+d, unless it is already closed for longer: a shorter
// Retry-After never cuts short a longer one another worker received.
func (g *pauseGate) pause(now time.Time, d time.Duration) {
	t := now.Add(d).UnixNano()
	for {
		cur := g.until.Load()
		if cur >= t || g.until.CompareAndSwap(cur, t) {
			return
		}
	}
}

// left is how long the gate stays closed after now; zero or less when it is open.
func (g *pauseGate) left(now time.Time) time.Duration {
	return time.Unix(0, g.until.Load()).Sub(now)
}

// wait returns when the gate is open, waiting again for a pause set while it slept.
func (g *pauseGate) wait(ctx context.Context) error {
	for {
		d := g.left(time.Now())
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// fetcher asks the API about messages. ctx (the run's) stops new attempts and waits;
// reqCtx, which an interrupt does not cancel, bounds requests already on the wire, so an
// interrupted run still keeps the answers in flight.
type fetcher struct {
	cfg   *Config
	lim   *rate.Limiter
	gate  pauseGate
	stats *counters
	// reached is set once any attempt has reached the API (see unreachableAttempts).
	reached atomic.Bool
	// minGap, when set, is the least wait between two attempts of one message, whatever the
	// backoff says. deadline, when set, is when a message's retries stop: an attempt that
	// could only start after it is not made, and the message fails at once.
	minGap   time.Duration
	deadline time.Time
}

// newLimiter returns the token bucket of rate r, or nil for r == 0 (no limit): a
// rate.Inf limiter still takes its mutex twice per request, which all the workers contend
// for on a run without a rate.
func newLimiter(r float64, burst int) *rate.Limiter {
	if r == 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r), bucketSize(r, burst))
}

// bucketSize is the token bucket's size for rate r and Config.Burst burst: burst, or when
// that is 0, one second's worth of requests.
func bucketSize(r float64, burst int) int {
	if burst == 0 {
		return max(1, int(math.Ceil(r)))
	}
	return burst
}

// fetchAll runs the worker pool over ids until ids is closed or ctx ends, sending every
// outcome to out. Only a fatal error (rejected credentials, an unreachable API) is
// returned; it cancels reqCtx via stop so requests in flight end at once.
//
// The pool is Concurrency goroutines that each take the next message when done with the
// last, not a goroutine per message: a new goroutine's stack grows again through every
// request (net/http's and the JSON decoder's frames are deep), which cost more CPU than
// the request's own work on the client side.
func (f *fetcher) fetchAll(ctx, reqCtx context.Context, stop context.CancelCauseFunc, ids <-chan todoItem, out chan<- outcome, cutAt int64) error {
	g, gctx := errgroup.WithContext(ctx)
	var taken atomic.Int64
	for range f.cfg.Concurrency {
		g.Go(func() error {
			for {
				var it todoItem
				select {
				case next, ok := <-ids:
					if !ok {
						return nil
					}
					it = next
				case <-gctx.Done():
					return nil
				}
				// Both cases may be ready at once: a message taken after the run stopped
				// is left for the next run, as one never taken.
				if gctx.Err() != nil {
					return nil
				}
				if taken.Add(1) == cutAt {
					out <- outcome{cut: true}
				}
				o, err := f.fetchOne(gctx, reqCtx, it)
				if err != nil {
					if fatal(err) {
						stop(err)
						return err
					}
					return nil // interrupted: the message is left for the next run
				}
				f.stats.done.Add(1)
				if o.failure != nil {
					f.stats.errored.Add(1)
				}
				out <- o // the writer drains until every worker is done
			}
		})
	}
	return g.Wait()
}

// fetchOne asks about one message, retrying what may succeed later. It returns an error
// only when the run must stop (an *AuthError, an *UnreachableError) or ctx ended before an
// answer.
func (f *fetcher) fetchOne(ctx, reqCtx context.Context, it todoItem) (outcome, error) {
	id := it.id
	bo := backoff.ExponentialBackOff{
		InitialInterval:     f.cfg.BackoffInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         f.cfg.BackoffMax,
	}
	for attempt := 1; ; attempt++ {
		if err := f.gate.wait(ctx); err != nil {
			return outcome{}, err
		}
		if f.lim != nil {
			if err := f.lim.Wait(ctx); err != nil {
				return outcome{}, err
			}
		}
		if attempt > 1 {
			f.stats.retries.Add(1)
		} else {
			f.stats.asked.Add(1)
		}
		f.stats.requests.Add(1)
		sent := time.Now()
		res, err := f.cfg.Client.Status(reqCtx, id)
		received := time.Now()
		f.stats.answeredWith(httpStatus(res, err))
		o := outcome{id: id, replaces: it.answered, sent: sent, at: received.UTC(), attempts: attempt}
		if err == nil {
			f.reached.Store(true)
			o.httpStatus, o.status, o.body = res.StatusCode, res.Status, res.Body
			return o, nil
		}
		if reqCtx.Err() != nil {
			return outcome{}, context.Cause(reqCtx)
		}
		if !smsbat.IsUnreachable(err) {
			f.reached.Store(true)
		} else if !f.reached.Load() && attempt >= min(unreachableAttempts, f.cfg.Retries+1) {
			return outcome{}, &UnreachableError{URL: f.cfg.APIURL, Err: requestError(err)}
		}
		var apiErr *smsbat.APIError
		isAPI := errors.As(err, &apiErr)
		switch {
		case isAPI && errors.Is(apiErr, smsbat.ErrUnauthorized):
			return outcome{}, &AuthError{Err: apiErr}
		case isAPI && errors.Is(apiErr, smsbat.ErrNotFound):
			o.httpStatus, o.body = apiErr.StatusCode, []byte(apiErr.Body)
			o.status = &smsbat.Status{DeliveryStatus: smsbat.StatusNotFound}
			return o, nil
		}
		fail := classify(err)
		if isAPI {
			o.httpStatus = apiErr.StatusCode
		}
		retryable := !isAPI || apiErr.Retryable()
		if !retryable || attempt > f.cfg.Retries {
			o.failure = fail
			if retryable {
				o.failure.err = fmt.Sprintf("gave up after %d attempts: %s", attempt, fail.err)
			}
			return o, nil
		}
		wait := bo.NextBackOff()
		if isAPI && apiErr.StatusCode == http.StatusTooManyRequests {
			f.stats.rateLimited.Add(1)
			if ra := apiErr.RetryAfter; ra > 0 {
				wait = min(ra, f.cfg.MaxRetryAfter)
			}
			f.gate.pause(received, wait)
		} else if isAPI && apiErr.RetryAfter > 0 {
			wait = min(apiErr.RetryAfter, f.cfg.MaxRetryAfter)
		}
		wait = max(wait, f.minGap)
		if !f.deadline.IsZero() && received.Add(wait).After(f.deadline) {
			o.failure = fail
			o.failure.err = fmt.Sprintf("no answer before the deadline (%d attempts): %s", attempt, fail.err)
			return o, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return outcome{}, err
		}
	}
}

// httpStatus is the status code an attempt was answered with, 0 when no answer came.
func httpStatus(res *smsbat.Result, err error) int {
	if err == nil && res != nil {
		// Before the targets of errors.As are declared: they escape, and would cost two
		// allocations for every answer.
		return res.StatusCode
	}
	var apiErr *smsbat.APIError
	var decErr *smsbat.DecodeError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.StatusCode
	case errors.As(err, &decErr):
		return decErr.StatusCode
	}
	return 0
}

// requestError is err without the *url.Error around it, whose text repeats the request's
// URL (and so one message's ID) before the cause.
func requestError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// classify names a failed attempt for fetch_errors.kind, keeping the status and body.
func classify(err error) *failure {
	f := &failure{err: err.Error()}
	var apiErr *smsbat.APIError
	var decErr *smsbat.DecodeError
	var netErr net.Error
	switch {
	case errors.As(err, &apiErr):
		f.body = apiErr.Body
		switch {
		case apiErr.StatusCode == http.StatusTooManyRequests:
			f.kind = "rate_limited"
		case apiErr.StatusCode >= 500:
			f.kind = "server_error"
		default:
			f.kind = "client_error"
		}
	case errors.As(err, &decErr):
		f.kind, f.body = "decode", decErr.Body
	case errors.As(err, &netErr) && netErr.Timeout():
		f.kind = "timeout"
	default:
		f.kind = "network"
	}
	return f
}
