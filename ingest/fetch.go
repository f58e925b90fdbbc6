package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
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

// counters are updated by workers and read by progress reporting and the writer.
type counters struct {
	requested   atomic.Int64 // messages set out to ask, over every pass (runs.requested)
	requests    atomic.Int64 // HTTP attempts made
	done        atomic.Int64 // messages finished (answered or failed), not necessarily stored
	errored     atomic.Int64 // messages finished as failures
	retries     atomic.Int64
	rateLimited atomic.Int64

	mu                         sync.Mutex
	answered, notFound, failed int64 // stored
}

func (c *counters) snapshot() Counts {
	return Counts{c.requests.Load(), c.done.Load(), c.errored.Load(), c.retries.Load(), c.rateLimited.Load()}
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
}

func newLimiter(r float64, burst int) *rate.Limiter {
	if r == 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	if burst == 0 {
		burst = max(1, int(math.Ceil(r)))
	}
	return rate.NewLimiter(rate.Limit(r), burst)
}

// fetchAll runs the worker pool over ids until ids is closed or ctx ends, sending every
// outcome to out. Only a fatal error (rejected credentials) is returned; it cancels reqCtx
// via stop so requests in flight end at once.
func (f *fetcher) fetchAll(ctx, reqCtx context.Context, stop context.CancelCauseFunc, ids <-chan todoItem, out chan<- outcome) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for it := range ids {
		// Go blocks at the limit and still starts the function after cancellation.
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			o, err := f.fetchOne(gctx, reqCtx, it)
			if err != nil {
				var ae *AuthError
				if errors.As(err, &ae) {
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
			return nil
		})
	}
	return g.Wait()
}

// fetchOne asks about one message, retrying what may succeed later. It returns an error
// only when the run must stop (an *AuthError) or ctx ended before an answer.
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
		if err := f.lim.Wait(ctx); err != nil {
			return outcome{}, err
		}
		if attempt > 1 {
			f.stats.retries.Add(1)
		}
		f.stats.requests.Add(1)
		res, err := f.cfg.Client.Status(reqCtx, id)
		received := time.Now()
		o := outcome{id: id, replaces: it.answered, at: received.UTC(), attempts: attempt}
		if err == nil {
			o.httpStatus, o.status, o.body = res.StatusCode, res.Status, res.Body
			return o, nil
		}
		if reqCtx.Err() != nil {
			return outcome{}, context.Cause(reqCtx)
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
		if err := sleep(ctx, wait); err != nil {
			return outcome{}, err
		}
	}
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
