package fakeapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
)

// receiver is a webhook endpoint in the test's process: it records every delivery with
// the time it arrived, and answers 500 to every n-th request.
type receiver struct {
	mu        sync.Mutex
	got       []arrival
	requests  int
	failEvery int
	auth      []string
}

type arrival struct {
	at    time.Time
	event struct {
		MessageID      string        `json:"messageId"`
		DeliveryStatus string        `json:"deliverystatus"`
		Timestamp      time.Time     `json:"timestamp"`
		Cost           *smsbat.Money `json:"cost"`
	}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	rc.auth = append(rc.auth, r.Header.Get("Authorization"))
	if rc.failEvery > 0 && rc.requests%rc.failEvery == 0 {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var a arrival
	a.at = time.Now()
	if err := json.Unmarshal(body, &a.event); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.got = append(rc.got, a)
}

// inProcess serves requests with h in the calling goroutine: real sockets would stop a
// synctest bubble's clock.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// change is one status change of a message, as a test expects it pushed.
type change struct {
	id, status string
	at         int64 // Unix nanoseconds: time.Time keys would differ by location
}

func ch(id, status string, at time.Time) change { return change{id, status, at.UnixNano()} }

// TestPusher runs a pusher over a long-tailed campaign on a synctest clock and checks
// each delivery against what the handler says of each message: the right changes at
// their times, duplicates and reorders as asked, retries past failures.
func TestPusher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := fakeapi.DefaultOptions()
		opts.NotFoundRate = 0.05
		s := issueMix
		s.SentAt = time.Now().Add(time.Minute) // the campaign goes out a minute from now
		opts.Settle = &s
		h := fakeapi.NewHandler(opts)
		list := ids(1000)
		rc := &receiver{failEvery: 13}
		client := &http.Client{Transport: inProcess{rc}}
		p, err := h.NewPusher(fakeapi.PushOptions{URL: "http://hook.invalid/smsbat/status", Token: "tok", IDs: list,
			Duplicates: 0.1, Reorder: 0.2, Client: client})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(t.Context()); err != nil {
			t.Fatal(err)
		}

		// What should arrive, from the handler's own account of each message.
		want := map[change]int{}
		var notFound, never, atOnce int
		for _, id := range list {
			e := h.Expected(id)
			switch {
			case e.NotFound:
				notFound++
				continue
			case e.Stuck:
				never++
			case e.SettleAt.Equal(s.SentAt):
				atOnce++
			}
			if e.ProcessingAt.After(s.SentAt) {
				want[ch(id, "scheduled", s.SentAt)] = 1
			}
			if e.Stuck || e.SettleAt.After(e.ProcessingAt) {
				want[ch(id, "processing", e.ProcessingAt)] = 1
			}
			if !e.Stuck {
				want[ch(id, e.Final.Status.DeliveryStatus, e.SettleAt)] = 1
				if c := *e.Final.Status.Cost; c < 0 {
					t.Fatalf("negative cost for %s", id)
				}
			}
		}
		if notFound == 0 || never == 0 || atOnce == 0 {
			t.Fatalf("the campaign lacks a kind: %d not found, %d never, %d at once", notFound, never, atOnce)
		}

		got := map[change]int{}
		sent := map[change][]time.Time{} // arrival times of each change
		for _, a := range rc.got {
			ev := a.event
			c := ch(ev.MessageID, ev.DeliveryStatus, ev.Timestamp)
			got[c]++
			sent[c] = append(sent[c], a.at)
			if a.at.Before(ev.Timestamp) {
				t.Errorf("%s %s arrived at %v, before it happened at %v", c.id, c.status, a.at, ev.Timestamp)
			}
			if final := smsbat.IsTerminal(ev.DeliveryStatus) || ev.DeliveryStatus == "sent" || ev.DeliveryStatus == "read" ||
				ev.DeliveryStatus == "expired" || ev.DeliveryStatus == "failed"; final != (ev.Cost != nil) {
				t.Errorf("%s %s: cost %v; want one on final statuses only", c.id, c.status, ev.Cost)
			}
		}
		// Every change arrives, once or twice (duplicates), and nothing else.
		dups := 0
		for c, n := range got {
			if want[c] == 0 {
				t.Errorf("pushed %v, which is not a change of the message", c)
			}
			if n == 2 {
				dups++
			} else if n != 1 {
				t.Errorf("%v arrived %d times", c, n)
			}
		}
		for c := range want {
			if got[c] == 0 {
				t.Errorf("%v never arrived", c)
			}
		}
		// The duplicate and reorder fractions, within a binomial tolerance.
		sched := p.Schedule()
		var reordered, withSuccessor int
		for _, ps := range sched {
			if ps.Duplicate {
				continue
			}
			if ps.Reordered {
				reordered++
			}
		}
		perID := map[string]int{}
		for c := range want {
			perID[c.id]++
		}
		for _, n := range perID {
			withSuccessor += n - 1
		}
		if f := float64(dups) / float64(len(want)); f < 0.08 || f > 0.12 {
			t.Errorf("%d of %d changes duplicated (%.3f), want about 0.1", dups, len(want), f)
		}
		if f := float64(reordered) / float64(withSuccessor); f < 0.17 || f > 0.23 {
			t.Errorf("%d of %d changes with a successor reordered (%.3f), want about 0.2", reordered, withSuccessor, f)
		}
		// A reordered change arrives after the next change of its message (when that one
		// went through at the first attempt: a retried one comes later).
		checked := 0
		for _, ps := range sched {
			if !ps.Reordered || ps.Duplicate {
				continue
			}
			var next *fakeapi.Push
			for i := range sched {
				q := &sched[i]
				if q.ID == ps.ID && !q.Duplicate && q.At.After(ps.At) && (next == nil || q.At.Before(next.At)) {
					next = q
				}
			}
			if next == nil || len(sent[ch(next.ID, next.Status, next.At)]) == 0 || len(sent[ch(ps.ID, ps.Status, ps.At)]) == 0 {
				t.Errorf("reordered %s %s: no next change, or one of them never arrived", ps.ID, ps.Status)
				continue
			}
			nextAt := sent[ch(next.ID, next.Status, next.At)][0]
			if !nextAt.Equal(next.SendAt) {
				continue
			}
			checked++
			if first := sent[ch(ps.ID, ps.Status, ps.At)][0]; !first.After(nextAt) {
				t.Errorf("%s %s (reordered) arrived at %v, not after %s at %v", ps.ID, ps.Status, first, next.Status, nextAt)
			}
		}
		if checked < reordered/2 {
			t.Errorf("only %d of %d reordered changes could be checked", checked, reordered)
		}
		st := p.Stats()
		if st.Delivered != int64(len(sched)) || st.Failed != 0 || st.Requests <= st.Delivered {
			t.Errorf("stats %+v, want all %d delivered, with retries", st, len(sched))
		}
		for _, a := range rc.auth {
			if a != "Bearer tok" {
				t.Fatalf("Authorization %q, want Bearer tok", a)
			}
		}
		t.Logf("%d messages: %d changes, %d duplicates, %d reordered, %d requests", len(list), len(want), dups, reordered, st.Requests)

		// The same options give the same schedule.
		p2, _ := fakeapi.NewHandler(opts).NewPusher(fakeapi.PushOptions{URL: "http://x", IDs: list, Duplicates: 0.1, Reorder: 0.2})
		if diff := cmp.Diff(sched, p2.Schedule()); diff != "" {
			t.Errorf("schedules differ (-first +second):\n%.2000s", diff)
		}
	})
}

// A delivery answered 500 every time is given up after MaxAttempts.
func TestPusherGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := fakeapi.Options{Settle: &fakeapi.Settle{AtOnce: 1}}
		rc := &receiver{failEvery: 1}
		p, err := fakeapi.NewHandler(opts).NewPusher(fakeapi.PushOptions{URL: "http://x", IDs: []string{"a", "b"}, MaxAttempts: 3,
			Client: &http.Client{Transport: inProcess{rc}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Failed != 2 || st.Requests != 6 || st.Delivered != 0 {
			t.Errorf("stats %+v, want 2 given up after 3 attempts each", st)
		}
	})
	if _, err := fakeapi.NewHandler(fakeapi.Options{}).NewPusher(fakeapi.PushOptions{URL: "http://x"}); err == nil {
		t.Errorf("NewPusher without Settle: no error")
	}
}
