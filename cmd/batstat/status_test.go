package main

import (
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
)

// These tests run `batstat status` as a child process against `batstat mock-server
// --settle-*`, and find the IDs they need by asking a fake with the same options what it
// answers.

// settledFake is the fake behind `mock-server --seed 7 --settle-never 0.2 ...
// --settle-sent-at sentAt`.
func settledFake(sentAt time.Time, atOnce float64, median time.Duration) *fakeapi.Handler {
	opts := fakeapi.DefaultOptions()
	opts.Seed = 7
	opts.Settle = &fakeapi.Settle{SentAt: sentAt, AtOnce: atOnce, Never: 0.2, Median: median, Sigma: 0.5, Max: time.Minute}
	return fakeapi.NewHandler(opts)
}

func settleFlags(sentAt time.Time, atOnce float64, median time.Duration) []string {
	return []string{"--seed", "7", "--settle-sent-at", sentAt.Format(time.RFC3339), "--settle-at-once", fmt.Sprint(atOnce),
		"--settle-never", "0.2", "--settle-median", median.String(), "--settle-sigma", "0.5", "--settle-max", "1m"}
}

// findID returns the first ID whose expectation ok accepts.
func findID(t *testing.T, h *fakeapi.Handler, ok func(fakeapi.Expectation) bool) string {
	t.Helper()
	for i := range 10_000 {
		id := fmt.Sprintf("s-%05d", i)
		if ok(h.Expected(id)) {
			return id
		}
	}
	t.Fatal("no such ID")
	return ""
}

func finalIs(status string) func(fakeapi.Expectation) bool {
	return func(e fakeapi.Expectation) bool {
		return !e.NotFound && !e.Stuck && e.Final.Status.DeliveryStatus == status
	}
}

// csvColumn returns column i of the CSV rows in out, header left out.
func csvColumn(t *testing.T, out string, i int) []string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("output %q: %v", out, err)
	}
	var col []string
	for _, r := range rows[1:] {
		col = append(col, r[i])
	}
	return col
}

func TestStatusExitStatuses(t *testing.T) {
	sentAt := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // all settled but the stuck
	_, url, _ := startMockServer(t, settleFlags(sentAt, 0, 10*time.Second)...)
	h := settledFake(sentAt, 0, 10*time.Second)
	delivered := findID(t, h, finalIs(smsbat.StatusDelivered))
	undeliverable := findID(t, h, finalIs(smsbat.StatusUndeliverable))
	stuck := findID(t, h, func(e fakeapi.Expectation) bool { return e.Stuck })
	notFound := findID(t, h, func(e fakeapi.Expectation) bool { return e.NotFound })
	closed := func() string { // a port nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()

	dir := t.TempDir()
	api := []string{"status", "--format", "csv", "--api-url", url, "--api-key", fakeapi.DefaultAPIKey}
	tests := []struct {
		name     string
		args     []string
		code     int
		statuses []string
		inStderr string
	}{
		{"delivered", []string{delivered}, 0, []string{"delivered"}, ""},
		{"undeliverable", []string{undeliverable}, 4, []string{"undeliverable"}, undeliverable + " (undeliverable)"},
		{"not found", []string{notFound}, 4, []string{"not_found"}, notFound + " (not_found)"},
		{"processing at once", []string{stuck}, 5, []string{"processing"}, "--wait D waits"},
		{"processing after the wait", []string{"--wait", "2s", "--interval", "1s", stuck}, 5, []string{"processing"}, "after --wait 2s"},
		{"pending outranks delivered", []string{delivered, stuck}, 5, []string{"delivered", "processing"}, "1 of 2 messages"},
		{"undelivered outranks pending", []string{stuck, undeliverable, delivered}, 4, []string{"processing", "undeliverable", "delivered"}, "1 of 3 messages"},
		{"a wrong key", []string{"--api-key", "wrong", delivered}, 1, []string{""}, "rejected the credentials"},
		{"an unreachable API", []string{"--api-url", closed, "--retries", "1", "--interval", "1s", delivered}, 1, []string{""}, "cannot reach the API at " + closed},
		{"an interval below a second", []string{"--interval", "500ms", delivered}, 2, nil, "--interval 500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, dir, "", append(api, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.inStderr) {
				t.Errorf("batstat status %v = exit %d, stderr:\n%s\nwant exit %d and %q", tt.args, r.code, r.stderr, tt.code, tt.inStderr)
			}
			if tt.statuses == nil {
				if r.stdout != "" {
					t.Errorf("bad usage printed %q", r.stdout)
				}
				return
			}
			if got := csvColumn(t, r.stdout, 1); strings.Join(got, " ") != strings.Join(tt.statuses, " ") {
				t.Errorf("statuses = %q, want %q", got, tt.statuses)
			}
		})
	}
}

// A wait ends when the message is delivered, long before its deadline; every answer the
// binary stored (--record) agrees with the fake at the time it was asked, and there are no
// more of them than --interval allows. An ID the database knows keeps its campaign.
func TestStatusWaitEndsWhenDeliveredAndRecords(t *testing.T) {
	sentAt := time.Now().UTC().Truncate(time.Second)
	_, url, _ := startMockServer(t, settleFlags(sentAt, 0.3, 6*time.Second)...)
	h := settledFake(sentAt, 0.3, 6*time.Second)
	id := findID(t, h, func(e fakeapi.Expectation) bool {
		d := e.SettleAt.Sub(sentAt)
		return finalIs(smsbat.StatusDelivered)(e) && d > 4*time.Second && d < 10*time.Second
	})
	known := findID(t, h, func(e fakeapi.Expectation) bool {
		return finalIs(smsbat.StatusDelivered)(e) && e.SettleAt.Equal(sentAt)
	})
	settleAt := h.Expected(id).SettleAt

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spring.csv"), []byte("messageId\n"+known+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := []string{"--db", "s.duckdb", "--api-url", url, "--api-key", fakeapi.DefaultAPIKey}
	if r := runCLI(t, dir, "", append(append([]string{"fetch"}, api...), "spring.csv")...); r.code != 0 {
		t.Fatalf("fetch = exit %d: %s", r.code, r.stderr)
	}
	start := time.Now()
	r := runCLI(t, dir, "", append(append([]string{"status", "--wait", "5m", "--interval", "1s", "--record", "--campaign", "otp",
		"--format", "csv"}, api...), id, known)...)
	elapsed := time.Since(start)
	if r.code != 0 || elapsed > 2*time.Minute {
		t.Fatalf("status --wait 5m of a message that settles at %s = exit %d after %v, stderr:\n%s\nwant 0 once it is delivered",
			settleAt.Format(time.TimeOnly), r.code, elapsed, r.stderr)
	}
	if got := csvColumn(t, r.stdout, 1); strings.Join(got, " ") != "delivered delivered" {
		t.Errorf("statuses = %q, want both delivered", got)
	}

	db := openTestDB(t, filepath.Join(dir, "s.duckdb"))
	rows, err := db.Query(`SELECT c.deliverystatus, c.checked_at FROM status_checks c JOIN runs USING (run_id)
		WHERE c.message_id = $1 AND runs.refresh = 'status' ORDER BY c.checked_at`, id)
	if err != nil {
		t.Fatal(err)
	}
	var checks []time.Time
	var last string
	for rows.Next() {
		var at time.Time
		if err := rows.Scan(&last, &at); err != nil {
			t.Fatal(err)
		}
		// A request answered just around settleAt may go either way.
		if terminal := last == smsbat.StatusDelivered; terminal != !at.Before(settleAt) && at.Sub(settleAt).Abs() > time.Second {
			t.Errorf("answer %s at %s, but the message settles at %s", last, at.Format(time.TimeOnly), settleAt.Format(time.TimeOnly))
		}
		checks = append(checks, at)
	}
	rows.Close()
	if last != smsbat.StatusDelivered {
		t.Errorf("last stored answer %q, want delivered", last)
	}
	// Requests at least --interval apart: no more than one a second after the first.
	if most := int(elapsed/time.Second) + 1; len(checks) > most {
		t.Errorf("%d answers in %v, want at most %d at --interval 1s", len(checks), elapsed, most)
	}
	t.Logf("%d answers for a message settling %v after sending; status took %v", len(checks), settleAt.Sub(sentAt), elapsed)

	var campaignOf = func(id string) string {
		var c string
		if err := db.QueryRow(`SELECT campaign FROM message_status WHERE message_id = $1`, id).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if campaignOf(id) != "otp" || campaignOf(known) != "spring" {
		t.Errorf("campaigns %q and %q, want otp for the new ID and spring for the known one", campaignOf(id), campaignOf(known))
	}
	var outcome string
	var requested int
	if err := db.QueryRow(`SELECT outcome, requested FROM runs WHERE refresh = 'status'`).Scan(&outcome, &requested); err != nil ||
		outcome != "ok" || requested != 2 {
		t.Errorf("status run = %s requesting %d (%v), want ok and 2", outcome, requested, err)
	}
}
