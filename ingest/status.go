package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

// DefaultInterval is the time between two asks of one message that StatusConfig defaults
// to: the provider's own example clients poll every 5 seconds.
const DefaultInterval = 5 * time.Second

// MinInterval is the shortest StatusConfig.Interval: the provider asks clients never to ask
// about a message more than once a second.
const MinInterval = time.Second

// StatusConfig is what Status needs: a few message IDs, and how long to wait for them to
// reach a terminal status.
type StatusConfig struct {
	Client *smsbat.Client
	// APIURL is the client's base URL, named by an *UnreachableError.
	APIURL string
	// IDs are the messages to ask about, each once (no repeats, none empty).
	IDs []string
	// Wait is how long, from the start, to keep asking a message that is not terminal;
	// 0 asks each message once.
	Wait time.Duration
	// Interval is the least time between two requests for one message, retries included:
	// a message is asked again Interval after its last answer, and a failed request is
	// retried with exponential backoff from Interval (0 = DefaultInterval; at least
	// MinInterval).
	Interval time.Duration
	// Retries is how many further attempts an ask makes after a request that may succeed
	// later (429, 5xx, a timeout, a reset). With Wait, no attempt is made after the wait
	// has run out.
	Retries int
	// Concurrency and Rate bound the requests of all messages together: in flight at once
	// (0 = 4) and per second (0 = 10, the provider's advice for batches). A handful of
	// messages is asked at once, but never at the pace of a fetch: the account's rate
	// limit is shared with the system that sends.
	Concurrency int
	Rate        float64
	// MaxRetryAfter caps how long a Retry-After can make an ask wait (default 5 min), and
	// BackoffMax the backoff between attempts (default 30 s, at least Interval).
	MaxRetryAfter, BackoffMax time.Duration
	// Progress, when not nil, is called each time a message is done (terminal, out of
	// time or failed) with how many of how many are; its calls are serialised.
	Progress func(done, total int)
}

// DefaultStatusConcurrency and DefaultStatusRate are StatusConfig's bounds on requests in
// flight and per second when its fields are zero.
const (
	DefaultStatusConcurrency = 4
	DefaultStatusRate        = 10
)

func (c *StatusConfig) setDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultStatusConcurrency
	}
	if c.Rate == 0 {
		c.Rate = DefaultStatusRate
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	c.BackoffMax = max(c.BackoffMax, c.Interval)
}

// Validate reports every field of c that Status cannot run with, each as a *ConfigError,
// joined with errors.Join. Like Config.Validate it applies no defaults.
func (c *StatusConfig) Validate() error {
	var errs []error
	bad := func(field, value, rule string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Rule: rule})
	}
	if c.Client == nil {
		bad("Client", "", "no API client")
	}
	if len(c.IDs) == 0 {
		bad("IDs", "", "no message ID")
	}
	seen := make(map[string]bool, len(c.IDs))
	for _, id := range c.IDs {
		switch {
		case id == "":
			bad("IDs", `""`, "empty message ID")
		case seen[id]:
			bad("IDs", strconv.Quote(id), "given twice")
		}
		seen[id] = true
	}
	if c.Wait < 0 {
		bad("Wait", c.Wait.String(), "must not be negative")
	}
	if c.Interval < MinInterval {
		bad("Interval", c.Interval.String(), "must be at least "+MinInterval.String()+
			": the provider asks never to ask about a message more than once a second")
	}
	if c.Retries < 0 {
		bad("Retries", strconv.Itoa(c.Retries), "must not be negative")
	}
	if c.Concurrency < 0 {
		bad("Concurrency", strconv.Itoa(c.Concurrency), "must not be negative")
	}
	if c.Rate < 0 {
		bad("Rate", strconv.FormatFloat(c.Rate, 'g', -1, 64), "must not be negative")
	}
	return errors.Join(errs...)
}

// MessageStatus is what Status learned about one message.
type MessageStatus struct {
	ID string
	// Status is the latest answer, DeliveryStatus "not_found" for a 404; nil when the
	// message got no answer.
	Status    *smsbat.Status
	CheckedAt time.Time // when the latest answer came (UTC); zero without one
	Answers   int       // answers received
	// Err says why the message's last ask got no answer: its retries ran out, the API
	// refused the request (a 400), or the wait ran out before the next retry. It is nil
	// when the last ask was answered.
	Err error
}

// Terminal reports whether the message's latest answer is a terminal status.
func (m *MessageStatus) Terminal() bool {
	return m.Status != nil && smsbat.IsTerminal(m.Status.DeliveryStatus)
}

// StatusRun is what Status did: the messages' statuses, and every answer and failure in
// the order received, which Record stores.
type StatusRun struct {
	// Messages are in the order of StatusConfig.IDs.
	Messages []MessageStatus
	Started  time.Time
	Elapsed  time.Duration
	// Interrupted says ctx ended before every message was done.
	Interrupted bool

	mu       sync.Mutex // guards outcomes and done
	outcomes []outcome
	done     int
	stats    counters
}

// Status asks the API about a few messages directly, as a script that sent them would:
// each message once, or with cfg.Wait every cfg.Interval until its status is terminal or
// the wait has run out, whichever comes first. Messages are followed concurrently, under
// one token bucket and a bound on requests in flight.
//
// It returns an error when the API rejected the credentials (an *AuthError, at once), when
// it cannot be reached at all (an *UnreachableError, as in a fetch) and when ctx ended (context.Cause(ctx)); the StatusRun is then what was learned so far. A
// message that got no answer is not an error of Status: its MessageStatus.Err says why.
func Status(ctx context.Context, cfg StatusConfig) (*StatusRun, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &StatusRun{Messages: make([]MessageStatus, len(cfg.IDs)), Started: time.Now()}
	f := &fetcher{
		cfg: &Config{Client: cfg.Client, APIURL: cfg.APIURL, Retries: cfg.Retries, MaxRetryAfter: cfg.MaxRetryAfter,
			BackoffInitial: cfg.Interval, BackoffMax: cfg.BackoffMax},
		lim:    newLimiter(cfg.Rate, 0),
		stats:  &r.stats,
		minGap: cfg.Interval,
	}
	if cfg.Wait > 0 {
		f.deadline = r.Started.Add(cfg.Wait)
	}
	// An interrupt stops the waits at once but lets requests on the wire end (their
	// answers count); rejected credentials stop those too.
	reqCtx, stopReqs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopReqs(nil)
	g, gctx := errgroup.WithContext(ctx)
	inFlight := make(chan struct{}, cfg.Concurrency)
	for i, id := range cfg.IDs {
		r.Messages[i].ID = id
		g.Go(func() error {
			err := r.follow(gctx, reqCtx, f, inFlight, &r.Messages[i], cfg.Interval)
			if err != nil {
				stopReqs(err)
				return err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.done++
			if cfg.Progress != nil && gctx.Err() == nil {
				cfg.Progress(r.done, len(cfg.IDs))
			}
			return nil
		})
	}
	err := g.Wait()
	r.Elapsed = time.Since(r.Started)
	if err != nil {
		return r, err
	}
	if ctx.Err() != nil {
		r.Interrupted = true
		return r, context.Cause(ctx)
	}
	return r, nil
}

// follow asks about one message until it is terminal, its ask fails, or no further ask
// fits in the wait. It returns an error only when the whole run must stop (see fatal); when
// ctx ends it returns nil with what it learned.
func (r *StatusRun) follow(ctx, reqCtx context.Context, f *fetcher, inFlight chan struct{}, m *MessageStatus, interval time.Duration) error {
	for {
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		o, err := f.fetchOne(ctx, reqCtx, todoItem{id: m.ID, answered: true})
		<-inFlight
		if err != nil {
			if fatal(err) {
				return err
			}
			return nil // interrupted
		}
		r.mu.Lock()
		r.outcomes = append(r.outcomes, o)
		r.mu.Unlock()
		if o.failure != nil {
			m.Err = errors.New(o.failure.err)
			return nil
		}
		m.Status, m.CheckedAt, m.Err = o.status, o.at, nil
		m.Answers++
		if m.Terminal() || f.deadline.IsZero() {
			return nil
		}
		at, ok := r.nextAsk(o.sent, interval, f.deadline)
		if !ok {
			return nil
		}
		if sleep(ctx, time.Until(at)) != nil {
			return nil
		}
	}
}

// nextAsk returns when to ask a message again whose last request was sent at sent, and
// whether that is still within the wait. Asks are due on the wait's own clock, at
// Started + k·interval, the first such instant at least interval after the last request;
// a request may have left up to a tenth of an interval late (a timer, the token bucket)
// without costing its slot. So a message is asked at 0, interval, 2·interval... and at
// the deadline when it falls on one, however long each request takes, and never twice
// within interval.
func (r *StatusRun) nextAsk(sent time.Time, interval time.Duration, deadline time.Time) (time.Time, bool) {
	earliest := sent.Add(interval)
	k := (earliest.Sub(r.Started) - interval/10 + interval - 1) / interval
	due := r.Started.Add(k * interval)
	if due.After(deadline) {
		return time.Time{}, false
	}
	if earliest.After(due) {
		return earliest, true
	}
	return due, true
}

// RecordOptions say how Record stores a StatusRun.
type RecordOptions struct {
	APIURL string // recorded in the runs row
	// Campaign is the campaign of the messages the database does not know yet.
	Campaign string
	// Err is the error Status returned, if any: it decides the run's outcome and is
	// recorded with it.
	Err error
}

// Record stores a StatusRun in db as a run: a runs row (inputs "status ID...", refresh
// "status"), the messages the database did not know under opts.Campaign (the others keep
// theirs), every answer as a status_checks row (the latest in status_latest) and every
// failed ask as a fetch_errors row. It returns the run's ID.
//
// The answers go through store.Batch as a fetch's do, in as many batches as the most
// answers one message got: a batch replaces a message's row in status_latest with the
// answer it holds, so it must not hold two of the same message.
func (r *StatusRun) Record(ctx context.Context, db *store.DB, opts RecordOptions) (runID int64, err error) {
	if err := db.RecoverCrashed(ctx); err != nil {
		return 0, err
	}
	ids := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		ids[i] = m.ID
	}
	if runID, err = db.StartRun(ctx, store.RunStart{APIURL: opts.APIURL, Refresh: "status",
		Inputs: "status " + strings.Join(ids, " "), StartedAt: r.Started}); err != nil {
		return 0, err
	}
	counts := store.RunCounts{IDsRead: int64(len(ids)), Requested: int64(len(ids))}
	finish := func(outcome string, runErr error) (int64, error) {
		if err := db.FinishRun(ctx, runID, outcome, runErr, counts); err != nil {
			return runID, errors.Join(runErr, err)
		}
		return runID, runErr
	}
	if _, err := db.AddMessages(ctx, runID, r.Started.UTC(), opts.Campaign, ids); err != nil {
		return finish(OutcomeFailed, err)
	}
	n, err := r.store(ctx, db, runID)
	s := r.stats.snapshot()
	counts.Answered, counts.NotFound, counts.Failed = n.Answered, n.NotFound, n.Failed
	counts.Retries, counts.RateLimited = s.Retries, s.RateLimited
	switch {
	case err != nil:
		return finish(OutcomeFailed, err)
	case opts.Err != nil && fatal(opts.Err):
		return finish(OutcomeFailed, opts.Err)
	case r.Interrupted:
		return finish(OutcomeInterrupted, opts.Err)
	case n.Failed > 0:
		return finish(OutcomePartial, nil)
	}
	return finish(OutcomeOK, nil)
}

// store commits the outcomes in batches that hold at most one outcome per message.
func (r *StatusRun) store(ctx context.Context, db *store.DB, runID int64) (stored store.BatchCounts, err error) {
	b, err := db.NewBatch(ctx, runID)
	if err != nil {
		return stored, err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	s := r.stats.snapshot()
	commit := func() error {
		if b.Staged() == (store.BatchCounts{}) {
			return nil
		}
		if err := b.Flush(); err != nil {
			return fmt.Errorf("store %d answers: %w", b.Staged().Answered, err)
		}
		n, err := b.Commit(ctx, store.RunTotals{Retries: s.Retries, RateLimited: s.RateLimited})
		stored.Answered += n.Answered
		stored.NotFound += n.NotFound
		stored.Failed += n.Failed
		return err
	}
	inBatch := make(map[string]bool, len(r.Messages))
	for i := range r.outcomes {
		o := &r.outcomes[i]
		if inBatch[o.id] {
			if err := commit(); err != nil {
				return stored, err
			}
			clear(inBatch)
		}
		inBatch[o.id] = true
		if err := stage(b, o); err != nil {
			return stored, err
		}
	}
	return stored, commit()
}
