package fakeapi_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
)

// sentAt is the campaign send time of the tests that fix it.
var sentAt = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// issueMix is the long tail the settle lifecycle was made for: 30% at once, the rest
// log-normal around 10 s up to five minutes, 4% never.
var issueMix = fakeapi.Settle{SentAt: sentAt, AtOnce: 0.3, Never: 0.04, Median: 10 * time.Second, Sigma: 1, Max: 5 * time.Minute}

// settleCounts is what Expected says about a population of IDs under Settle.
type settleCounts struct {
	found, never, atOnce int
	body                 []time.Duration // delays of the messages neither never nor at once
}

func countSettle(t *testing.T, h *fakeapi.Handler, list []string) settleCounts {
	t.Helper()
	s := h.Options().Settle
	var c settleCounts
	for _, id := range list {
		e := h.Expected(id)
		if e.NotFound {
			if !e.ProcessingAt.IsZero() || !e.SettleAt.IsZero() {
				t.Fatalf("Expected(%q) = not found with times %v, %v; want zero", id, e.ProcessingAt, e.SettleAt)
			}
			continue
		}
		c.found++
		if e.PollsToFinal != 0 {
			t.Fatalf("Expected(%q).PollsToFinal = %d under Settle, want 0", id, e.PollsToFinal)
		}
		if e.Stuck {
			c.never++
			if !e.SettleAt.IsZero() || e.ProcessingAt.Before(s.SentAt) {
				t.Fatalf("Expected(%q) = stuck, processing at %v, settled at %v; want processing from SentAt on and no settle time", id, e.ProcessingAt, e.SettleAt)
			}
			continue
		}
		d := e.SettleAt.Sub(s.SentAt)
		if d < 0 || (s.Max > 0 && d > s.Max) || d%time.Millisecond != 0 {
			t.Fatalf("Expected(%q): settles %v after SentAt, want whole milliseconds in [0, %v]", id, d, s.Max)
		}
		if want := s.SentAt.Add(d / 10); !e.ProcessingAt.Equal(want) {
			t.Fatalf("Expected(%q).ProcessingAt = SentAt+%v, want SentAt+%v (a tenth of the delay)", id, e.ProcessingAt.Sub(s.SentAt), d/10)
		}
		if d == 0 {
			c.atOnce++
			continue
		}
		c.body = append(c.body, d)
	}
	slices.Sort(c.body)
	return c
}

// TestSettleDistribution checks, over many IDs, that the settle delays come out as the
// options describe.
func TestSettleDistribution(t *testing.T) {
	const n = 20000
	list := ids(n)
	// Binomial standard deviation over 20000 draws is at most 0.0036; allow 4 of them.
	const tol = 0.015
	tests := []struct {
		name   string
		settle fakeapi.Settle
		// wantNever and wantAtOnce are fractions of found messages.
		wantNever, wantAtOnce float64
		// wantBody, when set, checks quantiles of the body: q → delay.
		wantBody map[float64]time.Duration
		// wantAtMax is the fraction of the body capped at Max.
		wantAtMax float64
	}{
		{
			name: "long tail", settle: issueMix, wantNever: 0.04, wantAtOnce: 0.3,
			wantBody: map[float64]time.Duration{
				0.5:    10 * time.Second,
				0.1587: 3679 * time.Millisecond,  // one sigma below: 10 s / e
				0.8413: 27183 * time.Millisecond, // one sigma above: 10 s × e
			},
		},
		{
			name:     "narrow",
			settle:   fakeapi.Settle{SentAt: sentAt, Median: 2 * time.Second, Sigma: 0.25},
			wantBody: map[float64]time.Duration{0.5: 2 * time.Second, 0.9772: 3297 * time.Millisecond}, // 2 s × e^0.5: two sigma above
		},
		{
			name:      "no spread",
			settle:    fakeapi.Settle{SentAt: sentAt, Never: 0.1, Median: 3 * time.Second},
			wantNever: 0.1,
			wantBody:  map[float64]time.Duration{0.01: 3 * time.Second, 0.99: 3 * time.Second},
		},
		{
			name:      "cap at the median",
			settle:    fakeapi.Settle{SentAt: sentAt, Median: 10 * time.Second, Sigma: 1, Max: 10 * time.Second},
			wantBody:  map[float64]time.Duration{0.25: 5094 * time.Millisecond}, // 10 s × e^-0.6745: the lower quartile
			wantAtMax: 0.5,
		},
		{name: "all at once", settle: fakeapi.Settle{SentAt: sentAt, AtOnce: 1, Median: time.Minute, Sigma: 1}, wantAtOnce: 1},
		{name: "no median", settle: fakeapi.Settle{SentAt: sentAt, Never: 0.2}, wantNever: 0.2, wantAtOnce: 0.8},
		{name: "fractions over one", settle: fakeapi.Settle{SentAt: sentAt, AtOnce: 0.8, Never: 0.5, Median: time.Second}, wantNever: 0.5, wantAtOnce: 0.5},
		{name: "all never", settle: fakeapi.Settle{SentAt: sentAt, AtOnce: 0.5, Never: 1, Median: time.Second}, wantNever: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fakeapi.NewHandler(fakeapi.Options{Seed: 5, NotFoundRate: 0.05, StuckRate: 0.5, Settle: &tt.settle})
			c := countSettle(t, h, list)
			if got := float64(n-c.found) / n; math.Abs(got-0.05) > tol {
				t.Errorf("not found = %.4f, want 0.05", got)
			}
			found := float64(c.found)
			if got := float64(c.never) / found; math.Abs(got-tt.wantNever) > tol {
				t.Errorf("never = %.4f, want %.4f", got, tt.wantNever)
			}
			if got := float64(c.atOnce) / found; math.Abs(got-tt.wantAtOnce) > tol {
				t.Errorf("at once = %.4f, want %.4f", got, tt.wantAtOnce)
			}
			if got, want := len(c.body), c.found-c.never-c.atOnce; got != want {
				t.Errorf("body has %d messages, want %d", got, want)
			}
			for q, want := range tt.wantBody {
				got := c.body[int(q*float64(len(c.body)))]
				// A quantile's place moves by about tol; its value by tol over the density.
				if r := float64(got) / float64(want); math.Abs(math.Log(r)) > 0.06 {
					t.Errorf("body quantile %.4f = %v, want about %v", q, got, want)
				}
			}
			if tt.settle.Max > 0 {
				atMax := 0
				for _, d := range c.body {
					if d == tt.settle.Max {
						atMax++
					}
				}
				if got := float64(atMax) / float64(len(c.body)); math.Abs(got-tt.wantAtMax) > 2*tol {
					t.Errorf("capped at Max = %.4f of the body, want %.4f", got, tt.wantAtMax)
				}
			}
		})
	}
}

// TestSettleDeterminism checks that the delays depend on the seed and the ID alone: two
// handlers created at different times agree, and Never picks the IDs StuckRate would.
func TestSettleDeterminism(t *testing.T) {
	list := ids(2000)
	mk := func(seed int64, sent time.Time) *fakeapi.Handler {
		s := issueMix
		s.SentAt = sent
		return fakeapi.NewHandler(fakeapi.Options{Seed: seed, NotFoundRate: 0.05, ExtendedRate: 0.4, Settle: &s})
	}
	delays := func(h *fakeapi.Handler) map[string]string {
		sent := h.Options().Settle.SentAt
		m := make(map[string]string, len(list))
		for _, id := range list {
			e := h.Expected(id)
			m[id] = fmt.Sprint(e.NotFound, e.Stuck, e.ProcessingAt.Sub(sent), e.SettleAt.Sub(sent), string(e.Final.Body))
		}
		return m
	}
	a, b := delays(mk(9, sentAt)), delays(mk(9, sentAt.Add(time.Hour)))
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, SentAt an hour apart: delays differ (-a +b):\n%s", diff)
	}
	c := delays(mk(10, sentAt))
	differ := 0
	for id := range a {
		if a[id] != c[id] {
			differ++
		}
	}
	if differ < len(list)/2 {
		t.Errorf("seeds 9 and 10 differ for %d of %d IDs, want most", differ, len(list))
	}

	polls := fakeapi.NewHandler(fakeapi.Options{Seed: 9, NotFoundRate: 0.05, StuckRate: issueMix.Never})
	clock := mk(9, sentAt)
	for _, id := range list {
		if p, c := polls.Expected(id).Stuck, clock.Expected(id).Stuck; p != c {
			t.Errorf("Expected(%q).Stuck = %v with StuckRate %v, %v with Settle.Never %v; want the same", id, p, issueMix.Never, c, issueMix.Never)
		}
	}

	// Pin a few delays: they must be the same in every process and on every platform.
	pinned := mk(1, sentAt)
	for id, want := range map[string]string{
		"0000000000000000": "3.394s",
		"3c6ef372fe94f82a": "0s",
		"cc623af8783354e7": "3.755s",
	} {
		e := pinned.Expected(id)
		if got := fmt.Sprint(e.SettleAt.Sub(sentAt)); got != want {
			t.Errorf("Expected(%q).SettleAt = SentAt+%s, want SentAt+%s", id, got, want)
		}
	}
}

// manualClock is a clock a test moves by hand; the handler reads it from its goroutines.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestSettleLifecycle asks IDs over real HTTP at chosen instants of a manual clock and
// checks each answer against the settle times Expected gives: scheduled, then processing,
// then final exactly from SettleAt, however many times the ID was asked before.
func TestSettleLifecycle(t *testing.T) {
	clock := &manualClock{now: sentAt.Add(-time.Minute)}
	s := issueMix
	s.SentAt = time.Time{} // from the clock when the handler is made
	srv := smsbattest.NewServer(t, fakeapi.Options{Seed: 3, NotFoundRate: 0.1, ExtendedRate: 0.4, Settle: &s, Now: clock.Now})
	client := srv.NewClient(t, smsbat.AuthHeader)
	if got := srv.Options().Settle.SentAt; !got.Equal(clock.Now()) {
		t.Fatalf("Options().Settle.SentAt = %v, want the clock at NewHandler, %v", got, clock.Now())
	}
	sent := clock.Now()

	ask := func(id string, at time.Time) string {
		t.Helper()
		clock.Set(at)
		res, err := client.Status(context.Background(), id)
		switch {
		case errors.Is(err, smsbat.ErrNotFound):
			return "404"
		case err != nil:
			t.Fatalf("Status(%q) at SentAt%+v: %v", id, at.Sub(sent), err)
		}
		if want := srv.AnswerAtTime(id, at).Body; string(res.Body) != string(want) {
			t.Errorf("Status(%q) at SentAt%+v: body %s, AnswerAtTime says %s", id, at.Sub(sent), res.Body, want)
		}
		return res.Status.DeliveryStatus
	}
	seen := map[string]bool{}
	for _, id := range ids(300) {
		e := srv.Expected(id)
		final := "404"
		if !e.NotFound {
			final = e.Final.Status.DeliveryStatus
		}
		type probe struct {
			at   time.Time
			want string
		}
		var probes []probe
		switch {
		case e.NotFound:
			seen["not found"] = true
			probes = []probe{{sent, "404"}, {sent.Add(time.Hour), "404"}}
		case e.Stuck:
			seen["never"] = true
			probes = []probe{
				{sent.Add(-time.Second), "scheduled"},
				{e.ProcessingAt, "processing"},
				{sent.Add(72 * time.Hour), "processing"},
			}
		case e.SettleAt.Equal(sent):
			seen["at once"] = true
			probes = []probe{{sent.Add(-time.Millisecond), "scheduled"}, {sent, final}, {sent.Add(time.Hour), final}}
		default:
			seen["later"] = true
			probes = []probe{
				{sent.Add(-time.Second), "scheduled"},
				{e.ProcessingAt.Add(-time.Millisecond), "scheduled"},
				{e.ProcessingAt, "processing"},
			}
			// Asking again and again just before the settle time does not settle it.
			for range 5 {
				probes = append(probes, probe{e.SettleAt.Add(-time.Millisecond), "processing"})
			}
			probes = append(probes, probe{e.SettleAt, final}, probe{e.SettleAt.Add(time.Hour), final})
		}
		var got, want []string
		for _, p := range probes {
			want = append(want, p.want)
			got = append(got, ask(id, p.at))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Status(%q) settling at SentAt+%v (-want +got):\n%s", id, e.SettleAt.Sub(sent), diff)
		}
	}
	if len(seen) != 4 {
		t.Errorf("cases covered: %v, want not found, never, at once and later", seen)
	}
}

// TestSettleSynctest runs a client and the fake inside a synctest bubble, whose clock
// moves only when the test sleeps: a message answers "processing" up to its settle time
// and its final status from then on, with no wall-clock wait.
func TestSettleSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fakeapi.NewHandler(fakeapi.Options{Seed: 4, Settle: &fakeapi.Settle{Median: time.Minute, Sigma: 1, Max: time.Hour}})
		client := smsbattest.NewInProcessClient(t, h, smsbat.AuthBasic)
		sent := h.Options().Settle.SentAt
		if !sent.Equal(time.Now()) {
			t.Fatalf("SentAt = %v, want the bubble's now %v", sent, time.Now())
		}
		var id string
		var e fakeapi.Expectation
		for _, cand := range ids(100) {
			if e = h.Expected(cand); e.SettleAt.Sub(sent) > 10*time.Second {
				id = cand
				break
			}
		}
		if id == "" {
			t.Fatal("no ID settles later than 10s after SentAt")
		}
		status := func() string {
			t.Helper()
			res, err := client.Status(context.Background(), id)
			if err != nil {
				t.Fatalf("Status(%q) at SentAt+%v: %v", id, time.Since(sent), err)
			}
			return res.Status.DeliveryStatus
		}
		if got := status(); got != smsbat.StatusScheduled {
			t.Errorf("Status(%q) at SentAt = %s, want scheduled", id, got)
		}
		time.Sleep(time.Until(e.ProcessingAt))
		for range 3 {
			if got := status(); got != smsbat.StatusProcessing {
				t.Errorf("Status(%q) at SentAt+%v = %s, want processing (settles at SentAt+%v)", id, time.Since(sent), got, e.SettleAt.Sub(sent))
			}
			time.Sleep((time.Until(e.SettleAt) - time.Millisecond) / 2)
		}
		time.Sleep(time.Until(e.SettleAt) - time.Millisecond)
		if got := status(); got != smsbat.StatusProcessing {
			t.Errorf("Status(%q) a millisecond before its settle time = %s, want processing", id, got)
		}
		time.Sleep(time.Millisecond)
		if got, want := status(), e.Final.Status.DeliveryStatus; got != want {
			t.Errorf("Status(%q) at its settle time = %s, want %s", id, got, want)
		}
		if got := h.CountFor(id); got != 6 {
			t.Errorf("CountFor(%q) = %d, want 6", id, got)
		}
	})
}

// TestSettleOff checks that without Settle the clock plays no part: the poll-counted
// lifecycle answers the same whatever Now says.
func TestSettleOff(t *testing.T) {
	clock := &manualClock{now: sentAt}
	h := fakeapi.NewHandler(fakeapi.Options{Seed: 3, MaxPollsToFinal: 3, Now: clock.Now})
	for _, id := range ids(50) {
		e := h.Expected(id)
		if !e.ProcessingAt.IsZero() || !e.SettleAt.IsZero() {
			t.Errorf("Expected(%q) without Settle has times %v, %v; want zero", id, e.ProcessingAt, e.SettleAt)
		}
		first := h.AnswerAt(id, 1)
		clock.Set(sentAt.Add(time.Hour))
		if diff := cmp.Diff(first, h.AnswerAt(id, 1)); diff != "" {
			t.Errorf("AnswerAt(%q, 1) changed with the clock (-before +after):\n%s", id, diff)
		}
		if diff := cmp.Diff(first, h.AnswerAtTime(id, sentAt.Add(48*time.Hour))); diff != "" {
			t.Errorf("AnswerAtTime(%q) without Settle (-AnswerAt(id, 1) +got):\n%s", id, diff)
		}
		clock.Set(sentAt)
	}
}
