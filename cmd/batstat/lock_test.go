package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/batstat/batstat/store"
)

// --lock-timeout: a writer waits 5m by default, a reader 30s; --snapshot-every 1m. Both
// take 0, and refuse a negative duration as bad usage.
func TestLockAndSnapshotOptions(t *testing.T) {
	f, err := parse(t, fetchCommand, "", "fetch", "--api-key", "k", "a.csv")
	if err != nil || f.db.lockTimeout != 5*time.Minute || f.snapshotEvery != time.Minute {
		t.Errorf("fetch defaults: --lock-timeout %v, --snapshot-every %v (%v); want 5m and 1m", f.db.lockTimeout, f.snapshotEvery, err)
	}
	f, err = parse(t, fetchCommand, "", "fetch", "--api-key", "k", "--lock-timeout", "0", "--snapshot-every", "0", "a.csv")
	if err != nil || f.db.lockTimeout != 0 || f.snapshotEvery != 0 {
		t.Errorf("fetch --lock-timeout 0 --snapshot-every 0: %v, %v (%v); want both 0", f.db.lockTimeout, f.snapshotEvery, err)
	}
	r, err := parse(t, reportCommand, "", "report")
	q, qerr := parse(t, queryCommand, "", "query", "SELECT 1")
	x, xerr := parse(t, exportCommand, "", "export", "--lock-timeout", "2s")
	if err != nil || qerr != nil || xerr != nil || r.db.lockTimeout != 30*time.Second || q.db.lockTimeout != 30*time.Second || x.db.lockTimeout != 2*time.Second {
		t.Errorf("readers' --lock-timeout: report %v, query %v, export --lock-timeout 2s %v (%v, %v, %v); want 30s, 30s, 2s",
			r.db.lockTimeout, q.db.lockTimeout, x.db.lockTimeout, err, qerr, xerr)
	}
	checkUsage(t, fetchCommand, []usageCase{
		{[]string{"fetch", "--api-key", "k", "--lock-timeout", "-1s", "a.csv"}, 2, []string{"--lock-timeout -1s: must not be negative"}},
		{[]string{"fetch", "--api-key", "k", "--snapshot-every", "-1m", "a.csv"}, 2, []string{"--snapshot-every -1m0s: must not be negative"}},
		{[]string{"fetch", "--api-key", "k", "--lock-timeout", "soon", "a.csv"}, 2, []string{"soon"}},
	})
	checkUsage(t, reportCommand, []usageCase{{[]string{"report", "--lock-timeout", "-1s"}, 2, []string{"--lock-timeout"}}})
	checkUsage(t, queryCommand, []usageCase{{[]string{"query", "--lock-timeout", "-1s", "SELECT 1"}, 2, []string{"--lock-timeout"}}})
	checkUsage(t, exportCommand, []usageCase{{[]string{"export", "--lock-timeout", "-1s"}, 2, []string{"--lock-timeout"}}})
}

// A database held by another process is a temporary failure, exit 75, however it is
// wrapped; an interrupt while waiting for it is still an interrupt.
func TestLockedExitsTempFail(t *testing.T) {
	locked := &store.LockedError{Path: "b.duckdb", PID: "42", Waited: 30 * time.Second}
	for _, err := range []error{
		locked,
		fmt.Errorf("open: %w", locked),
		&store.OutdatedError{Path: "b.duckdb", Version: 2, Err: locked},
	} {
		if got := exitCode(err); got != exitTempFail {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, exitTempFail)
		}
	}
	if got := exitCode(errors.Join(locked, &signalError{sig: 2})); got != exitInterrupted {
		t.Errorf("exitCode of an interrupted wait = %d, want %d", got, exitInterrupted)
	}
}

func TestSnapshotNotice(t *testing.T) {
	taken := time.Date(2026, 12, 1, 14, 5, 9, 0, time.Local)
	tests := []struct {
		name string
		now  time.Time
		run  *store.RunProgress
		want string
	}{
		{"in progress", taken.Add(time.Minute), &store.RunProgress{RunID: 7, Outcome: store.OutcomeRunning, Requested: 5000, Asked: 1234},
			"reading snapshot of 14:05:09, run 7 in progress: asked 1234 of 5000"},
		{"loading", taken.Add(time.Minute), &store.RunProgress{RunID: 7, Outcome: store.OutcomeRunning, Loading: true},
			"reading snapshot of 14:05:09, run 7 in progress: loading its inputs"},
		{"ended", taken.Add(time.Minute), &store.RunProgress{RunID: 6, Outcome: "partial", Requested: 10, Asked: 10},
			"reading snapshot of 14:05:09, run 6 ended partial: asked 10 of 10"},
		{"no run", taken.Add(time.Minute), nil, "reading snapshot of 14:05:09"},
		{"a day old", taken.Add(25 * time.Hour), &store.RunProgress{RunID: 7, Outcome: store.OutcomeRunning, Requested: 5000, Asked: 1234},
			"reading snapshot of 2026-12-01 14:05:09, run 7 in progress: asked 1234 of 5000"},
	}
	for _, tt := range tests {
		if got := snapshotNotice(&store.SnapshotInfo{Taken: taken, Run: tt.run}, tt.now); got != tt.want {
			t.Errorf("%s: snapshotNotice = %q, want %q", tt.name, got, tt.want)
		}
	}
}
