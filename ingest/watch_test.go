package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// longTail is the campaign the schedule is made for: 30% final at once, the rest
// log-normal around 10 s up to five minutes; never is the share that never settles.
func longTail(never float64) *smsbattest.Settle {
	return &smsbattest.Settle{AtOnce: 0.3, Never: never, Median: 10 * time.Second, Sigma: 1, Max: 5 * time.Minute}
}

// observer samples the database every step of the bubble's clock and keeps, per message,
// the first instant its terminal status was seen stored.
type observer struct {
	mu     sync.Mutex
	stored map[string]time.Time
	stop   chan struct{}
	done   chan struct{}
}

func observe(t *testing.T, db *store.DB, step time.Duration) *observer {
	o := &observer{stored: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		now := time.Now()
		rows, err := db.Query(`SELECT message_id FROM status_latest WHERE is_terminal(deliverystatus)`)
		if err != nil {
			t.Error(err)
			return
		}
		defer rows.Close()
		o.mu.Lock()
		defer o.mu.Unlock()
		for rows.Next() {
			var id string
			rows.Scan(&id)
			if _, ok := o.stored[id]; !ok {
				o.stored[id] = now
			}
		}
	}
	go func() {
		defer close(o.done)
		for {
			sample()
			select {
			case <-o.stop:
				sample() // what the run stored since, before it returned
				return
			case <-time.After(step):
			}
		}
	}()
	return o
}

func (o *observer) close() map[string]time.Time {
	close(o.stop)
	<-o.done
	return o.stored
}

// requestTimes returns, per message ID, when the fake received each request for it.
func requestTimes(h *smsbattest.Handler) map[string][]time.Time {
	m := map[string][]time.Time{}
	for _, r := range h.Requests() {
		m[r.ID] = append(m[r.ID], r.Time)
	}
	return m
}

// A watch on a campaign that settles on the clock: every final status is stored within
// one schedule interval of appearing (the interval from the check before it, which the
// watch overshoots by the spacing of passes at most), plus the writer's flush; no message
// is asked twice within --min-interval; the watch ends by itself once every message is
// final, in one run. The input's sent times differ by fractions of a second, so that the
// messages' schedules do not fall due together.
func TestWatchStoresFinalStatusesWithinOneInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := smsbattest.Options{Seed: 3, KeepLog: true, Settle: longTail(0)}
		f := newBubbleFixture(t, opts, 300)
		start := time.Now()
		sent := map[string]time.Time{}
		var csv strings.Builder
		csv.WriteString("message_id,sent_at\n")
		for i, id := range f.ids {
			sent[id] = start.Add(-time.Duration(i%50) * 137 * time.Millisecond)
			fmt.Fprintf(&csv, "%s,%s\n", id, sent[id].Format(time.RFC3339Nano))
		}
		if err := os.WriteFile(f.input, []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := f.config(t)
		cfg.Watch = true
		cfg.Schedule = ingest.DefaultSchedule()
		const step = 250 * time.Millisecond
		obs := observe(t, f.db, step)
		sum, err := ingest.Fetch(context.Background(), f.db, cfg)
		stored := obs.close()
		if err != nil {
			t.Fatal(err)
		}
		if sum.Outcome != ingest.OutcomeOK || sum.Pending != 0 || sum.GivenUp != 0 || sum.Failed != 0 {
			t.Errorf("summary = %+v, want ok with nothing pending", sum)
		}
		var lastSettle time.Time
		asked := requestTimes(f.api)
		var requests int64
		for _, id := range f.ids {
			e := f.api.Expected(id)
			lastSettle = later(lastSettle, e.SettleAt)
			times := asked[id]
			requests += int64(len(times))
			for i := 1; i < len(times); i++ {
				if d := times[i].Sub(times[i-1]); d < cfg.Schedule.MinInterval {
					t.Errorf("%s asked %v after the ask before (asks at %v), want at least --min-interval %v", id, d, since(start, times), cfg.Schedule.MinInterval)
				}
			}
			// The first ask that saw it final, and the one before it.
			i := slices.IndexFunc(times, func(at time.Time) bool { return !at.Before(e.SettleAt) })
			if i < 0 {
				t.Errorf("%s settled %v in but was never asked after", id, e.SettleAt.Sub(start))
				continue
			}
			bound := time.Duration(0) // final at the first ask
			if i > 0 {
				// Passes start a second apart at least: a message due within a second of
				// the last pass waits for the next. And the database keeps microseconds:
				// the watch reads each ask as made up to 1 µs later than it was.
				next := cfg.Schedule.Next(sent[id], times[i-1])
				if late := times[i].Sub(next); late > ingest.MinMinInterval+2*time.Microsecond {
					t.Errorf("%s asked at %v, %v after the schedule's %v (asks at %v)", id, times[i].Sub(start), late, next.Sub(start), since(start, times))
				}
				bound = next.Sub(times[i-1]) + ingest.MinMinInterval
			}
			bound += time.Second + step // the writer's flush, the observer's step
			if got, ok := stored[id]; !ok || got.Sub(e.SettleAt) > bound {
				t.Errorf("%s final at %v, stored at %v (seen %v): want within %v", id, e.SettleAt.Sub(start), got.Sub(start), ok, bound)
			}
		}
		if sum.Requests != requests || sum.Requested != requests || sum.Answered != requests {
			t.Errorf("summary counts %d requests, %d requested, %d answered; the fake saw %d", sum.Requests, sum.Requested, sum.Answered, requests)
		}
		// It ended by itself: after the last message settled, one interval at most.
		if end := time.Now(); end.After(lastSettle.Add(cfg.Schedule.MaxInterval)) || end.Sub(start) > 10*time.Minute {
			t.Errorf("watch ended %v after the start, the last message settled at %v", end.Sub(start), lastSettle.Sub(start))
		}
		if n := count(t, f.db, `SELECT count(*) FROM runs`); n != 1 {
			t.Errorf("%d runs rows, want one for the whole watch", n)
		}
		if n := count(t, f.db, `SELECT requested FROM runs`); n != requests {
			t.Errorf("runs.requested = %d, want %d (every ask of every pass)", n, requests)
		}
		if n := count(t, f.db, `SELECT count(*) FROM message_status WHERE NOT is_terminal(deliverystatus)`); n != 0 {
			t.Errorf("%d messages not final at the end", n)
		}
	})
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// since returns the first times (at most 20) as durations from start, for a message.
func since(start time.Time, times []time.Time) []time.Duration {
	var ds []time.Duration
	for _, at := range times[:min(len(times), 20)] {
		ds = append(ds, at.Sub(start))
	}
	return ds
}

// A watch whose remaining messages never settle stops at --max-wait, with them counted
// as pending; one whose messages are all older than --give-up-after stops asking them and
// ends. Neither asks a never-settling message more often than the schedule says.
func TestWatchEndsAtMaxWaitAndGivesUp(t *testing.T) {
	tests := []struct {
		name        string
		maxWait     time.Duration
		giveUpAfter time.Duration
		wantEnd     time.Duration // when the watch ends, after the start
		wantPending bool          // the never-settling are pending (else given up)
	}{
		{"max wait", 20 * time.Minute, 72 * time.Hour, 20 * time.Minute, true},
		{"give up", 24 * time.Hour, 30 * time.Minute, 30 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := smsbattest.Options{Seed: 5, KeepLog: true, Settle: longTail(0.2)}
				f := newBubbleFixture(t, opts, 100)
				cfg := f.config(t)
				cfg.Watch = true
				cfg.Schedule = ingest.DefaultSchedule()
				cfg.Schedule.GiveUpAfter = tt.giveUpAfter
				cfg.MaxWait = tt.maxWait
				start := time.Now()
				sum, err := ingest.Fetch(context.Background(), f.db, cfg)
				if err != nil {
					t.Fatal(err)
				}
				var never int64
				for _, id := range f.ids {
					if f.api.Expected(id).Stuck {
						never++
					}
				}
				pending, givenUp := never, int64(0)
				if !tt.wantPending {
					pending, givenUp = 0, never
				}
				if never == 0 || sum.Outcome != ingest.OutcomeOK || sum.Pending != pending || sum.GivenUp != givenUp {
					t.Errorf("summary = %+v, want ok with %d pending and %d given up", sum, pending, givenUp)
				}
				// The watch ends at the deadline, or at the first wake-up after the last
				// message was given up (which is at most one interval late).
				if took := time.Since(start); took < tt.wantEnd || took > tt.wantEnd+cfg.Schedule.MaxInterval {
					t.Errorf("watch took %v, want %v", took, tt.wantEnd)
				}
				// A message that never settles is asked as the schedule says: never sooner.
				for id, times := range requestTimes(f.api) {
					for i := 1; i < len(times); i++ {
						if next := cfg.Schedule.Next(start, times[i-1]); times[i].Before(next) {
							t.Errorf("%s asked at %v, before the schedule's %v", id, times[i].Sub(start), next.Sub(start))
						}
					}
					if last := times[len(times)-1]; cfg.Schedule.GivenUp(last, start) {
						t.Errorf("%s asked at %v, after it was given up", id, last.Sub(start))
					}
				}
			})
		})
	}
}

// A message whose requests fail is not asked again sooner than one that got an answer:
// the schedule counts a failed attempt as hearing about it. Otherwise a watch would
// hammer a failing API every pass.
func TestWatchPacesFailingMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := smsbattest.Options{Seed: 5, KeepLog: true, Settle: longTail(0)}
		opts.Hook = func(w http.ResponseWriter, r *http.Request, id string, n int) bool {
			if id == "msg-000007" {
				w.WriteHeader(http.StatusBadRequest) // not retried: a client error
				return true
			}
			return false
		}
		f := newBubbleFixture(t, opts, 20)
		cfg := f.config(t)
		cfg.Watch = true
		cfg.Schedule = ingest.DefaultSchedule()
		cfg.MaxWait = time.Hour
		start := time.Now()
		sum, err := ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		times := requestTimes(f.api)["msg-000007"]
		for i := 1; i < len(times); i++ {
			if next := cfg.Schedule.Next(start, times[i-1]); times[i].Before(next) {
				t.Errorf("failing message asked at %v, before the schedule's %v", times[i].Sub(start), next.Sub(start))
			}
		}
		// Every 5 s up to 20 s, then a third of its age: about two dozen asks in an hour, not 720.
		if len(times) < 15 || len(times) > 30 {
			t.Errorf("failing message asked %d times in an hour (at %v)", len(times), since(start, times))
		}
		if sum.Outcome != ingest.OutcomePartial || sum.Failing != 1 || sum.Pending != 1 || sum.Failed != int64(len(times)) {
			t.Errorf("summary = %+v, want partial, 1 failing and pending, %d failed asks", sum, len(times))
		}
	})
}

// --refresh due asks only what the schedule says is due, once; messages older than
// --give-up-after are not asked.
func TestRefreshDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := smsbattest.Options{Seed: 9, KeepLog: true, Settle: longTail(0.1)}
		f := newBubbleFixture(t, opts, 200)
		cfg := f.config(t)
		start := time.Now()
		// A first run asks every message, as a pending run.
		if _, err := ingest.Fetch(context.Background(), f.db, cfg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(7 * time.Second) // the clock of the bubble
		cfg.Refresh = ingest.RefreshDue
		cfg.Schedule = ingest.DefaultSchedule()
		before := len(f.api.Requests())
		sum, err := ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Every message was asked at the start; those not final then are due after 5 s.
		var pending int
		for _, id := range f.ids {
			if !smsbat.IsTerminal(f.api.AnswerAtTime(id, start).Status.DeliveryStatus) {
				pending++
			}
		}
		asked := f.api.Requests()[before:]
		seen := map[string]bool{}
		for _, r := range asked {
			if seen[r.ID] {
				t.Errorf("%s asked twice in one --refresh due run", r.ID)
			}
			seen[r.ID] = true
		}
		if len(asked) != pending || sum.Requested != int64(pending) || sum.Passes != 1 {
			t.Errorf("--refresh due asked %d (summary %+v), want the %d pending once each, in one pass", len(asked), sum, pending)
		}
		// Right after, nothing is due: a second run asks nothing.
		before = len(f.api.Requests())
		sum, err = ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.api.Requests()) - before; n != 0 || sum.Requested != 0 || sum.Passes != 0 {
			t.Errorf("--refresh due right after asked %d (summary %+v), want none", n, sum)
		}
		// Past --give-up-after, nothing is asked either: the stuck messages are given up.
		time.Sleep(time.Hour)
		cfg.Schedule.GiveUpAfter = 30 * time.Minute
		before = len(f.api.Requests())
		sum, err = ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.api.Requests()) - before; n != 0 || sum.GivenUp == 0 || sum.Pending != 0 {
			t.Errorf("--refresh due past give-up-after asked %d (summary %+v), want none and all given up", n, sum)
		}
	})
}

// Interrupting a watch, during a pass or while it sleeps, loses nothing: every answer
// the fake gave is stored, and the run is recorded as interrupted.
func TestWatchInterruptedKeepsAnswers(t *testing.T) {
	for _, during := range []string{"pass", "sleep"} {
		t.Run(during, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				cause := errors.New("test interrupt")
				opts := smsbattest.Options{Seed: 11, Settle: longTail(0.1), Latency: 10 * time.Millisecond}
				var served atomic.Int64
				if during == "pass" {
					opts.Hook = func(http.ResponseWriter, *http.Request, string, int) bool {
						if served.Add(1) == 250 { // in the second pass, with requests in flight
							cancel(cause)
						}
						return false
					}
				}
				f := newBubbleFixture(t, opts, 200)
				cfg := f.config(t)
				cfg.Watch = true
				cfg.Schedule = ingest.DefaultSchedule()
				if during == "sleep" {
					go func() {
						time.Sleep(3 * time.Minute)
						cancel(cause)
					}()
				}
				sum, err := ingest.Fetch(ctx, f.db, cfg)
				if !errors.Is(err, cause) {
					t.Fatalf("Fetch error = %v, want the cancel cause", err)
				}
				stored := count(t, f.db, `SELECT count(*) FROM status_checks`)
				if sum.Outcome != ingest.OutcomeInterrupted || stored != f.api.Count() || stored <= 200 {
					t.Errorf("outcome %s, %d answers stored, %d served: want interrupted after the first pass, every served answer stored",
						sum.Outcome, stored, f.api.Count())
				}
				if n := count(t, f.db, `SELECT answered FROM runs`); n != stored {
					t.Errorf("runs.answered = %d, want %d", n, stored)
				}
			})
		})
	}
}

// --refresh pending is as it was: it asks every message of the input without a terminal
// status, once, whatever the schedule would say (here, two seconds after the last ask,
// none is due).
func TestRefreshPendingIgnoresTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := smsbattest.Options{Seed: 9, KeepLog: true, Settle: longTail(0.1)}
		f := newBubbleFixture(t, opts, 200)
		cfg := f.config(t)
		if _, err := ingest.Fetch(context.Background(), f.db, cfg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		pending := map[string]bool{}
		for id, st := range latest(t, f.db) {
			if !smsbat.IsTerminal(st) {
				pending[id] = true
			}
		}
		before := len(f.api.Requests())
		sum, err := ingest.Fetch(context.Background(), f.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		asked := map[string]bool{}
		for _, r := range f.api.Requests()[before:] {
			if asked[r.ID] {
				t.Errorf("%s asked twice", r.ID)
			}
			asked[r.ID] = true
		}
		if len(pending) == 0 || !maps.Equal(asked, pending) || sum.Requested != int64(len(pending)) || sum.Scheduled {
			t.Errorf("--refresh pending asked %d messages (summary %+v), want exactly the %d pending", len(asked), sum, len(pending))
		}
	})
}
