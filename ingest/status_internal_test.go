package ingest

import (
	"testing"
	"time"
)

// nextAsk keeps asks on the wait's clock: a request a little late keeps its slot, one late
// by more than a tenth of the interval (or retried) moves to the next slot that leaves
// the interval after it, and nothing is due after the deadline.
func TestNextAsk(t *testing.T) {
	const iv = 5 * time.Second
	r := &StatusRun{Started: t0}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	deadline := at(30 * time.Second)
	tests := []struct {
		name string
		sent time.Duration
		want time.Duration // -1: no more asks
	}{
		{"on time", 5 * time.Second, 10 * time.Second},
		{"the first ask, a little late", 30 * time.Millisecond, 5*time.Second + 30*time.Millisecond},
		{"late within a tenth", 5*time.Second + 499*time.Millisecond, 10*time.Second + 499*time.Millisecond},
		{"late by more than a tenth", 5*time.Second + 501*time.Millisecond, 15 * time.Second},
		{"after retries", 17 * time.Second, 25 * time.Second},
		{"the deadline is on the clock", 25*time.Second + 20*time.Millisecond, 30*time.Second + 20*time.Millisecond},
		{"past the deadline", 26 * time.Second, -1},
	}
	for _, tt := range tests {
		got, ok := r.nextAsk(at(tt.sent), iv, deadline)
		switch {
		case tt.want < 0 && ok:
			t.Errorf("%s: nextAsk(%v) = %v, want none", tt.name, tt.sent, got.Sub(t0))
		case tt.want >= 0 && (!ok || !got.Equal(at(tt.want))):
			t.Errorf("%s: nextAsk(%v) = %v, %v; want %v", tt.name, tt.sent, got.Sub(t0), ok, tt.want)
		}
		if ok && got.Sub(at(tt.sent)) < iv {
			t.Errorf("%s: nextAsk(%v) = %v, within the interval", tt.name, tt.sent, got.Sub(t0))
		}
	}
}
