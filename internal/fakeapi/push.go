package fakeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/batstat/batstat/smsbat"
)

// Lags of the deliveries a Pusher sends out of turn.
const (
	// DuplicateLag is how long after the first copy a duplicate delivery is sent.
	DuplicateLag = time.Second
	// ReorderLag is how long after its successor a reordered delivery is sent.
	ReorderLag = 10 * time.Millisecond
)

// PushOptions configures a Pusher.
type PushOptions struct {
	// URL receives one POST per status change, in the provider's webhook format:
	// {"messageId","deliverystatus","timestamp","cost"}; cost only on final statuses.
	URL string
	// Token, when set, goes as "Authorization: Bearer Token".
	Token string
	// IDs are the messages whose status changes are pushed; IDs the handler does not
	// find (404) are never pushed, as the provider knows no such message.
	IDs []string
	// Duplicates is the fraction of deliveries sent a second time, DuplicateLag later.
	Duplicates float64
	// Reorder is the fraction of deliveries, among those followed by another for the same
	// message, that are sent ReorderLag after the next one instead of before it: a
	// "processing" that arrives after the final status.
	Reorder float64
	// Concurrency is how many deliveries are in flight at once; 0 means 4. Deliveries
	// start in the order of their send time.
	Concurrency int
	// MaxAttempts bounds the attempts of one delivery, which is retried with exponential
	// backoff on a network error or any answer but 2xx; 0 means 10.
	MaxAttempts int
	// Client sends the requests; nil means a client with a 10 s timeout.
	Client *http.Client
	// Logger receives a line per delivery given up; nil discards them.
	Logger *slog.Logger
}

// Push is one delivery of a status change.
type Push struct {
	ID     string
	Status string
	// At is when the status changed: the event's timestamp.
	At time.Time
	// SendAt is when the delivery is sent: At, but for a reordered delivery or a
	// duplicate.
	SendAt    time.Time
	Duplicate bool // the second copy of a delivery
	Reordered bool // sent after the next status change of its message
	Body      []byte
}

// PushStats count a Pusher's work so far.
type PushStats struct {
	Delivered int64 // deliveries answered 2xx
	Failed    int64 // deliveries given up after MaxAttempts
	Requests  int64 // POSTs made, retries included
}

// Pusher pushes the status changes of a Handler under Settle to a URL at the times
// they happen on the handler's clock, as the provider's webhook does: scheduled at
// Settle.SentAt, processing at Expectation.ProcessingAt, the final status at SettleAt
// (a message final at once pushes its final status only; one that never settles,
// "processing" and nothing after it). It waits with real timers, so a test drives it
// with testing/synctest. Create it with NewPusher and call Run once.
type Pusher struct {
	opts     PushOptions
	now      func() time.Time
	schedule []Push
	stats    struct{ delivered, failed, requests atomic.Int64 }
	// done gets a token whenever a delivery is done (delivered or given up), for WaitSent.
	done chan struct{}
}

// NewPusher returns a Pusher of h's status changes for o.IDs. h must have Options.Settle:
// without a clock, a status has no time to be pushed at.
func (h *Handler) NewPusher(o PushOptions) (*Pusher, error) {
	s := h.opts.Settle
	if s == nil {
		return nil, errors.New("fakeapi: pushing needs statuses on the clock (Options.Settle)")
	}
	if o.URL == "" {
		return nil, errors.New("fakeapi: no URL to push to")
	}
	o.Duplicates, o.Reorder = clamp01(o.Duplicates), clamp01(o.Reorder)
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pusher{opts: o, now: h.opts.Now, done: make(chan struct{}, 1)}
	for _, id := range o.IDs {
		p.schedule = h.appendPushes(p.schedule, id, &o)
	}
	slices.SortStableFunc(p.schedule, func(a, b Push) int { return a.SendAt.Compare(b.SendAt) })
	return p, nil
}

// appendPushes appends the deliveries of id's status changes to list.
func (h *Handler) appendPushes(list []Push, id string, o *PushOptions) []Push {
	e := h.Expected(id)
	if e.NotFound {
		return list
	}
	s := h.opts.Settle
	var pushes []Push
	if e.ProcessingAt.After(s.SentAt) {
		pushes = append(pushes, Push{ID: id, Status: smsbat.StatusScheduled, At: s.SentAt})
	}
	if e.Stuck || e.SettleAt.After(e.ProcessingAt) {
		pushes = append(pushes, Push{ID: id, Status: smsbat.StatusProcessing, At: e.ProcessingAt})
	}
	var cost *smsbat.Money
	if !e.Stuck {
		cost = e.Final.Status.Cost
		pushes = append(pushes, Push{ID: id, Status: e.Final.Status.DeliveryStatus, At: e.SettleAt})
	}
	hash := idHash(h.opts.Seed, id)
	for k := range pushes {
		pushes[k].SendAt = pushes[k].At
		var c *smsbat.Money
		if k == len(pushes)-1 {
			c = cost
		}
		pushes[k].Body = pushBody(id, pushes[k].Status, pushes[k].At, c)
	}
	// From the last change back, so that a reordered delivery goes after its successor
	// however late that one is sent.
	for k := len(pushes) - 2; k >= 0; k-- {
		if unit(requestHash(hash, k), saltPushReorder) < o.Reorder {
			pushes[k].SendAt = pushes[k+1].SendAt.Add(ReorderLag)
			pushes[k].Reordered = true
		}
	}
	for k := range pushes {
		list = append(list, pushes[k])
		if unit(requestHash(hash, k), saltPushDuplicate) < o.Duplicates {
			dup := pushes[k]
			dup.SendAt, dup.Duplicate = dup.SendAt.Add(DuplicateLag), true
			list = append(list, dup)
		}
	}
	return list
}

// pushBody is the webhook body of one status change.
func pushBody(id, status string, at time.Time, cost *smsbat.Money) []byte {
	b := append([]byte(`{"messageId":`), appendJSONString(nil, id)...)
	b = append(b, `,"deliverystatus":`...)
	b = appendJSONString(b, status)
	b = append(b, `,"timestamp":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if cost != nil {
		b = append(b, `,"cost":`...)
		b = appendMoney(b, int64(*cost))
	}
	return append(b, '}')
}

// Schedule returns the deliveries Run makes, in the order it starts them.
func (p *Pusher) Schedule() []Push { return slices.Clone(p.schedule) }

// Stats returns the counters so far.
func (p *Pusher) Stats() PushStats {
	return PushStats{Delivered: p.stats.delivered.Load(), Failed: p.stats.failed.Load(), Requests: p.stats.requests.Load()}
}

// WaitSent waits until every delivery scheduled at or before t is done (delivered or
// given up), or until ctx ends; Run must be running. A test or the demo that starts
// pushing changes of the past catches up with them before it reads the spool.
func (p *Pusher) WaitSent(ctx context.Context, t time.Time) error {
	var due int64
	for i := range p.schedule {
		if !p.schedule[i].SendAt.After(t) {
			due++
		}
	}
	for {
		if st := p.Stats(); st.Delivered+st.Failed >= due {
			return nil
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (p *Pusher) noteDone() {
	select {
	case p.done <- struct{}{}:
	default: // a token is waiting already: WaitSent looks at the counters anyway
	}
}

// Run makes every delivery of the schedule at its time and returns once all are done
// (delivered or given up), or with ctx's error when it ends first. A delivery that fails
// is retried on the side, so that it does not hold up the ones due after it.
func (p *Pusher) Run(ctx context.Context) error {
	work := make(chan *Push)
	var wg sync.WaitGroup // workers and retries
	for range p.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for push := range work {
				if !p.attempt(ctx, push, 1) {
					wg.Add(1)
					go p.retry(ctx, push, &wg)
				}
			}
		}()
	}
	defer wg.Wait()
	defer close(work)
	for i := range p.schedule {
		push := &p.schedule[i]
		if d := push.SendAt.Sub(p.now()); d > 0 && !sleep(ctx, d) {
			return ctx.Err()
		}
		select {
		case work <- push:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// retry makes the further attempts of a delivery, with exponential backoff.
func (p *Pusher) retry(ctx context.Context, push *Push, wg *sync.WaitGroup) {
	defer wg.Done()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 10*time.Second
	for n := 2; n <= p.opts.MaxAttempts; n++ {
		if !sleep(ctx, bo.NextBackOff()) || p.attempt(ctx, push, n) {
			return
		}
	}
}

// attempt POSTs a delivery once and reports whether it is done with: answered 2xx,
// given up at the last attempt, or ctx ended.
func (p *Pusher) attempt(ctx context.Context, push *Push, n int) bool {
	code, err := p.post(ctx, push.Body)
	switch {
	case err == nil && code/100 == 2:
		p.stats.delivered.Add(1)
		p.noteDone()
		return true
	case ctx.Err() != nil:
		return true
	case n >= p.opts.MaxAttempts:
		last := "HTTP " + strconv.Itoa(code)
		if err != nil {
			last = err.Error()
		}
		p.stats.failed.Add(1)
		p.noteDone()
		p.opts.Logger.Warn("push given up", "message_id", push.ID, "status", push.Status, "attempts", n, "last", last)
		return true
	}
	return false
}

func (p *Pusher) post(ctx context.Context, body []byte) (int, error) {
	p.stats.requests.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header["Content-Type"] = ctJSON
	if p.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
