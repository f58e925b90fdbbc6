package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// Status's waits are tested in synctest bubbles against the fake API with statuses that
// settle on the bubble's clock: every wait is asserted to the nanosecond, and nothing
// waits for real.

// settleOptions is a campaign sent when the handler is made: most messages settle within
// a minute, a fifth never do, a tenth are not found. Requests are logged.
func settleOptions() smsbattest.Options {
	return smsbattest.Options{
		Seed: 11, NotFoundRate: 0.1, ExtendedRate: 0.4, KeepLog: true,
		Settle: &smsbattest.Settle{Never: 0.2, Median: 15 * time.Second, Sigma: 0.6, Max: time.Minute},
	}
}

// kind is what a test wants of a message: the status it ends in, and for a message that
// settles, bounds on when.
type kind struct {
	final    string // the final status; smsbat.StatusNotFound, or "stuck" for one that never settles
	from, to time.Duration
}

// pick returns the first ID of the fake of that kind.
func pick(t *testing.T, h *smsbattest.Handler, k kind) string {
	t.Helper()
	sent := h.Options().Settle.SentAt
	for i := range 10_000 {
		id := fmt.Sprintf("st-%05d", i)
		e := h.Expected(id)
		switch {
		case k.final == smsbat.StatusNotFound:
			if e.NotFound {
				return id
			}
		case k.final == "stuck":
			if e.Stuck {
				return id
			}
		case !e.NotFound && !e.Stuck && e.Final.Status.DeliveryStatus == k.final:
			if d := e.SettleAt.Sub(sent); d > k.from && d < k.to {
				return id
			}
		}
	}
	t.Fatalf("no ID of kind %+v", k)
	return ""
}

// grid is the first multiple of interval at or after d: when a message asked every
// interval from 0 is first seen final, d after the start.
func grid(d, interval time.Duration) time.Duration {
	return (d + interval - 1) / interval * interval
}

// checkGaps fails when the fake received two requests for one message less than interval
// apart.
func checkGaps(t *testing.T, h *smsbattest.Handler, interval time.Duration) {
	t.Helper()
	last := map[string]time.Time{}
	for _, r := range h.Requests() {
		if prev, ok := last[r.ID]; ok && r.Time.Sub(prev) < interval {
			t.Errorf("%s asked %v after its last request, want at least %v", r.ID, r.Time.Sub(prev), interval)
		}
		last[r.ID] = r.Time
	}
}

// TestStatusWaitsUntilTerminal follows a delivered, an undeliverable, a stuck and an
// unknown message together with --wait 30s --interval 5s: each settled one is answered
// terminal at the first ask after it settled, the others are asked every 5 s to the end
// of the wait, which ends when the last of them can no longer be asked.
func TestStatusWaitsUntilTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		h := smsbattest.NewHandler(settleOptions())
		const interval, wait = 5 * time.Second, 30 * time.Second
		delivered := pick(t, h, kind{final: smsbat.StatusDelivered, from: 6 * time.Second, to: 14 * time.Second})
		undeliverable := pick(t, h, kind{final: smsbat.StatusUndeliverable, from: 16 * time.Second, to: 24 * time.Second})
		stuck := pick(t, h, kind{final: "stuck"})
		notFound := pick(t, h, kind{final: smsbat.StatusNotFound})

		ids := []string{stuck, delivered, notFound, undeliverable}
		run, err := ingest.Status(context.Background(), ingest.StatusConfig{
			Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
			IDs:    ids, Wait: wait, Interval: interval, Retries: 3,
		})
		if err != nil {
			t.Fatal(err)
		}
		type view struct {
			ID, Status string
			At         time.Duration
			Answers    int
		}
		settled := func(id string) time.Duration {
			return grid(h.Expected(id).SettleAt.Sub(start), interval)
		}
		want := []view{
			{stuck, smsbat.StatusProcessing, wait, 7},
			{delivered, smsbat.StatusDelivered, settled(delivered), int(settled(delivered)/interval) + 1},
			{notFound, smsbat.StatusNotFound, wait, 7},
			{undeliverable, smsbat.StatusUndeliverable, settled(undeliverable), int(settled(undeliverable)/interval) + 1},
		}
		var got []view
		for _, m := range run.Messages {
			if m.Err != nil {
				t.Errorf("%s: %v", m.ID, m.Err)
			}
			got = append(got, view{m.ID, m.Status.DeliveryStatus, m.CheckedAt.Sub(start), m.Answers})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		if run.Elapsed != wait {
			t.Errorf("Status took %v, want the whole wait %v", run.Elapsed, wait)
		}
		if got, want := h.Count(), int64(7+7+want[1].Answers+want[3].Answers); got != want {
			t.Errorf("%d requests, want %d", got, want)
		}
		checkGaps(t, h, interval)
	})
}

// A wait ends as soon as every message is terminal, not at its deadline; without a wait,
// each message is asked once.
func TestStatusEndsWhenTerminal(t *testing.T) {
	tests := []struct {
		name     string
		kind     kind
		wait     time.Duration
		interval time.Duration
		status   string
		at       func(settle time.Duration) time.Duration
		answers  func(settle time.Duration) int
	}{
		{"delivered", kind{smsbat.StatusDelivered, 3 * time.Second, 9 * time.Second}, time.Hour, 2 * time.Second,
			smsbat.StatusDelivered, func(s time.Duration) time.Duration { return grid(s, 2*time.Second) },
			func(s time.Duration) int { return int(grid(s, 2*time.Second)/(2*time.Second)) + 1 }},
		{"undeliverable at the deadline", kind{smsbat.StatusUndeliverable, 21 * time.Second, 29 * time.Second}, 30 * time.Second, 10 * time.Second,
			smsbat.StatusUndeliverable, func(time.Duration) time.Duration { return 30 * time.Second },
			func(time.Duration) int { return 4 }},
		{"settles after the last ask that fits", kind{smsbat.StatusDelivered, 31 * time.Second, 39 * time.Second}, 35 * time.Second, 10 * time.Second,
			"processing", func(time.Duration) time.Duration { return 30 * time.Second },
			func(time.Duration) int { return 4 }},
		{"no wait", kind{smsbat.StatusDelivered, 3 * time.Second, 9 * time.Second}, 0, time.Second,
			"scheduled", func(time.Duration) time.Duration { return 0 },
			func(time.Duration) int { return 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				h := smsbattest.NewHandler(settleOptions())
				id := pick(t, h, tt.kind)
				settle := h.Expected(id).SettleAt.Sub(start)
				if tt.status == "scheduled" && settle/10 == 0 {
					t.Fatalf("%s answers processing at once", id)
				}
				run, err := ingest.Status(context.Background(), ingest.StatusConfig{
					Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
					IDs:    []string{id}, Wait: tt.wait, Interval: tt.interval,
				})
				if err != nil {
					t.Fatal(err)
				}
				m := run.Messages[0]
				if m.Status.DeliveryStatus != tt.status || m.CheckedAt.Sub(start) != tt.at(settle) ||
					m.Answers != tt.answers(settle) || run.Elapsed != tt.at(settle) {
					t.Errorf("%s (settles at %v) = %s at %v after %d answers, returned at %v; want %s at %v after %d",
						id, settle, m.Status.DeliveryStatus, m.CheckedAt.Sub(start), m.Answers, run.Elapsed,
						tt.status, tt.at(settle), tt.answers(settle))
				}
				checkGaps(t, h, tt.interval)
			})
		})
	}
}

// A failing request is retried with backoff from the interval, never sooner, and a
// Retry-After longer than the interval is waited out; with a wait, no retry is made after
// it runs out, and the message fails at once rather than at the deadline.
func TestStatusBacksOff(t *testing.T) {
	tests := []struct {
		name string
		// fail answers the n-th request of the message itself when it returns a status.
		fail    func(n int) (code int, retryAfter string)
		wait    time.Duration
		retries int
		check   func(t *testing.T, m ingest.MessageStatus, times []time.Duration)
	}{{
		name: "429 with Retry-After",
		fail: func(n int) (int, string) {
			if n <= 2 {
				return http.StatusTooManyRequests, "12"
			}
			return 0, ""
		},
		retries: 5,
		check: func(t *testing.T, m ingest.MessageStatus, times []time.Duration) {
			if want := []time.Duration{0, 12 * time.Second, 24 * time.Second}; !cmp.Equal(times, want) || m.Err != nil || m.Status == nil {
				t.Errorf("requests at %v, err %v; want %v and an answer", times, m.Err, want)
			}
		},
	}, {
		name: "5xx backs off exponentially from the interval",
		fail: func(n int) (int, string) {
			if n <= 3 {
				return http.StatusServiceUnavailable, ""
			}
			return 0, ""
		},
		retries: 5,
		check: func(t *testing.T, m ingest.MessageStatus, times []time.Duration) {
			// Backoff with jitter from 5 s, doubling: at least 5, 5 and 10 s apart.
			if len(times) != 4 || m.Err != nil || m.Status == nil || times[3]-times[2] < 10*time.Second {
				t.Errorf("requests at %v, err %v; want 4, the last two at least 10 s apart, and an answer", times, m.Err)
			}
		},
	}, {
		name:    "retries run out",
		fail:    func(int) (int, string) { return http.StatusInternalServerError, "" },
		retries: 2,
		check: func(t *testing.T, m ingest.MessageStatus, times []time.Duration) {
			if len(times) != 3 || m.Err == nil || !strings.Contains(m.Err.Error(), "gave up after 3 attempts") || m.Status != nil {
				t.Errorf("requests at %v, err %v; want 3 and an error that says so", times, m.Err)
			}
		},
	}, {
		name: "the wait runs out before a retry",
		fail: func(int) (int, string) { return http.StatusTooManyRequests, "20" },
		wait: 30 * time.Second, retries: 5,
		check: func(t *testing.T, m ingest.MessageStatus, times []time.Duration) {
			if want := []time.Duration{0, 20 * time.Second}; !cmp.Equal(times, want) || m.Err == nil ||
				!strings.Contains(m.Err.Error(), "no answer before the deadline (2 attempts): HTTP 429") {
				t.Errorf("requests at %v, err %v; want %v and an error naming the deadline", times, m.Err, want)
			}
		},
	}, {
		name: "a 400 is not retried",
		fail: func(int) (int, string) { return http.StatusBadRequest, "" },
		wait: time.Minute, retries: 5,
		check: func(t *testing.T, m ingest.MessageStatus, times []time.Duration) {
			if len(times) != 1 || m.Err == nil || !strings.Contains(m.Err.Error(), "400") {
				t.Errorf("requests at %v, err %v; want one and a 400", times, m.Err)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				opts := settleOptions()
				opts.Settle.Never = 1 // every message answers, but none settles
				opts.NotFoundRate = 0
				opts.Hook = func(w http.ResponseWriter, _ *http.Request, _ string, n int) bool {
					code, ra := tt.fail(n)
					if code == 0 {
						return false
					}
					if ra != "" {
						w.Header().Set("Retry-After", ra)
					}
					w.WriteHeader(code)
					return true
				}
				h := smsbattest.NewHandler(opts)
				run, err := ingest.Status(context.Background(), ingest.StatusConfig{
					Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
					IDs:    []string{"m-1"}, Wait: tt.wait, Interval: 5 * time.Second, Retries: tt.retries,
				})
				if err != nil {
					t.Fatal(err)
				}
				var times []time.Duration
				for _, r := range h.Requests() {
					times = append(times, r.Time.Sub(start))
				}
				if run.Elapsed != times[len(times)-1] {
					t.Errorf("Status returned %v after the start, want at its last request, %v", run.Elapsed, times[len(times)-1])
				}
				tt.check(t, run.Messages[0], times)
				checkGaps(t, h, 5*time.Second)
			})
		})
	}
}

// Rejected credentials stop every message at once, with what was learned before.
func TestStatusStopsOnRejectedCredentials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		opts := settleOptions()
		opts.Settle.Never = 1
		opts.NotFoundRate = 0
		opts.Hook = func(w http.ResponseWriter, _ *http.Request, id string, n int) bool {
			if id == "m-2" && n == 2 {
				w.WriteHeader(http.StatusUnauthorized)
				return true
			}
			return false
		}
		h := smsbattest.NewHandler(opts)
		run, err := ingest.Status(context.Background(), ingest.StatusConfig{
			Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
			IDs:    []string{"m-1", "m-2", "m-3"}, Wait: time.Hour, Interval: 5 * time.Second, Retries: 5,
		})
		var ae *ingest.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("Status error = %v, want an *AuthError", err)
		}
		if run.Elapsed != 5*time.Second || time.Since(start) != 5*time.Second {
			t.Errorf("Status returned %v after the start, want at the 401, 5s", run.Elapsed)
		}
		for _, m := range run.Messages {
			if m.Answers != 1 && !(m.ID != "m-2" && m.Answers == 2) {
				t.Errorf("%s: %d answers, want 1 or 2 (the second round may be answered before the 401)", m.ID, m.Answers)
			}
		}
	})
}

// An interrupt ends the waits at once; the run keeps the answers received.
func TestStatusInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		h := smsbattest.NewHandler(settleOptions())
		stuck := pick(t, h, kind{final: "stuck"})
		stop := errors.New("stopped by the test")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(12*time.Second, func() { cancel(stop) })
		run, err := ingest.Status(ctx, ingest.StatusConfig{
			Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
			IDs:    []string{stuck}, Wait: time.Minute, Interval: 5 * time.Second,
		})
		if !errors.Is(err, stop) || !run.Interrupted {
			t.Fatalf("Status error = %v, interrupted %v; want the cause and true", err, run.Interrupted)
		}
		if m := run.Messages[0]; m.Answers != 3 || m.Status.DeliveryStatus != smsbat.StatusProcessing || time.Since(start) != 12*time.Second {
			t.Errorf("%s: %d answers, %s, returned after %v; want 3, processing, at the interrupt (12s)",
				m.ID, m.Answers, m.Status.DeliveryStatus, time.Since(start))
		}
	})
}

// Record stores a status run as a run: every answer, the failures, the messages the
// database did not know under the campaign given (the others keep theirs), and the
// latest answer of each message.
func TestStatusRecord(t *testing.T) {
	var run *ingest.StatusRun
	var delivered, stuck, notFound, known string
	const failing = "bad-id"
	synctest.Test(t, func(t *testing.T) {
		opts := settleOptions()
		opts.Hook = func(w http.ResponseWriter, _ *http.Request, id string, _ int) bool {
			if id != failing {
				return false
			}
			w.WriteHeader(http.StatusBadRequest)
			return true
		}
		h := smsbattest.NewHandler(opts)
		delivered = pick(t, h, kind{final: smsbat.StatusDelivered, from: 6 * time.Second, to: 14 * time.Second})
		stuck = pick(t, h, kind{final: "stuck"})
		notFound = pick(t, h, kind{final: smsbat.StatusNotFound})
		known = pick(t, h, kind{final: smsbat.StatusUndeliverable, from: 0, to: 9 * time.Second})
		var err error
		run, err = ingest.Status(context.Background(), ingest.StatusConfig{
			Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
			IDs:    []string{delivered, stuck, notFound, failing, known},
			Wait:   20 * time.Second, Interval: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "r.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first, err := db.StartRun(ctx, store.RunStart{Inputs: "spring.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddMessages(ctx, first, time.Now(), "spring", []string{known}); err != nil {
		t.Fatal(err)
	}
	runID, err := run.Record(ctx, db, ingest.RecordOptions{APIURL: "http://smsbat.test", Campaign: "otp"})
	if err != nil {
		t.Fatal(err)
	}

	var answers int
	for _, m := range run.Messages {
		answers += m.Answers
		var campaign string
		var checks int
		if err := db.QueryRow(`SELECT campaign, (SELECT count(*) FROM status_checks c WHERE c.message_id = m.message_id AND run_id = $2)
			FROM message_status m WHERE message_id = $1`, m.ID, runID).Scan(&campaign, &checks); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		wantCampaign := "otp"
		if m.ID == known {
			wantCampaign = "spring"
		}
		if campaign != wantCampaign || checks != m.Answers {
			t.Errorf("%s: campaign %q with %d checks, want %q and %d", m.ID, campaign, checks, wantCampaign, m.Answers)
		}
		if m.Status == nil {
			continue
		}
		var status string
		var at time.Time
		var latest int
		if err := db.QueryRow(`SELECT any_value(deliverystatus), any_value(checked_at), count(*) FROM status_latest WHERE message_id = $1`,
			m.ID).Scan(&status, &at, &latest); err != nil {
			t.Fatal(err)
		}
		if status != m.Status.DeliveryStatus || !at.Equal(m.CheckedAt.Truncate(time.Microsecond)) || latest != 1 {
			t.Errorf("%s: status_latest %d rows, %s at %v; want one, %s at %v", m.ID, latest, status, at, m.Status.DeliveryStatus, m.CheckedAt)
		}
	}
	if run.Messages[0].Answers < 2 || run.Messages[1].Answers != 5 {
		t.Errorf("answers %d and %d: want several for %s and 5 for %s", run.Messages[0].Answers, run.Messages[1].Answers, delivered, stuck)
	}

	var outcome, inputs, refresh string
	var started time.Time
	var idsRead, requested, answered, failed int
	var loading bool
	if err := db.QueryRow(`SELECT outcome, inputs, refresh, started_at, ids_read, requested, answered, failed, loading
		FROM runs WHERE run_id = $1`, runID).Scan(&outcome, &inputs, &refresh, &started, &idsRead, &requested, &answered, &failed, &loading); err != nil {
		t.Fatal(err)
	}
	wantInputs := strings.Join([]string{"status", delivered, stuck, notFound, failing, known}, " ")
	if outcome != ingest.OutcomePartial || inputs != wantInputs || refresh != "status" || !started.Equal(run.Started.Truncate(time.Microsecond)) ||
		idsRead != 5 || requested != 5 || answered != answers || failed != 1 || loading {
		t.Errorf("runs row = %s %q %s %v ids_read %d requested %d answered %d failed %d loading %v; "+
			"want partial %q status %v 5 5 %d 1 false", outcome, inputs, refresh, started, idsRead, requested, answered, failed, loading,
			wantInputs, run.Started, answers)
	}
	var kind string
	var code int
	if err := db.QueryRow(`SELECT kind, http_status FROM fetch_errors WHERE run_id = $1 AND message_id = $2`, runID, failing).Scan(&kind, &code); err != nil ||
		kind != "client_error" || code != http.StatusBadRequest {
		t.Errorf("fetch_errors of %s = %s %d (%v), want client_error 400", failing, kind, code, err)
	}
}

// Asks keep to the wait's clock however long a request takes: with 400 ms per request, a
// stuck message is asked at 0, 1, 2... and at the deadline, 5 s.
func TestStatusKeepsItsClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		opts := settleOptions()
		opts.Latency = 400 * time.Millisecond
		h := smsbattest.NewHandler(opts)
		stuck := pick(t, h, kind{final: "stuck"})
		run, err := ingest.Status(context.Background(), ingest.StatusConfig{
			Client: smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader),
			IDs:    []string{stuck}, Wait: 5 * time.Second, Interval: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		var times []time.Duration
		for _, r := range h.Requests() {
			times = append(times, r.Time.Sub(start))
		}
		want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}
		if !cmp.Equal(times, want) || run.Messages[0].Answers != 6 || run.Elapsed != 5*time.Second+400*time.Millisecond {
			t.Errorf("requests at %v, %d answers, returned after %v; want %v, 6, 5.4s", times, run.Messages[0].Answers, run.Elapsed, want)
		}
	})
}
