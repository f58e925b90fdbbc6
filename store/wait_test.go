package store_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batstat/batstat/store"
)

// Wait.Do under a fake clock: it tries again until the file is free, for at most its
// Timeout, says once that it waits, and stops when the context ends.
func TestWaitDo(t *testing.T) {
	boom := errors.New("not a database")
	stop := errors.New("signal")
	tests := []struct {
		name     string
		timeout  time.Duration
		freeAt   time.Duration // the holder lets go; -1 never
		other    error         // what an attempt returns instead of the lock, when not nil
		cancelAt time.Duration // 0 = never
		wantErr  error         // nil, boom, stop, or a *LockedError
		waited   time.Duration // LockedError.Waited when wantErr is one
		took     time.Duration // at most
		tookMin  time.Duration
		waiting  int
	}{
		{name: "free", timeout: 5 * time.Second, freeAt: 0, took: 0, waiting: 0},
		{name: "freed after 3s", timeout: 5 * time.Second, freeAt: 3 * time.Second, tookMin: 3 * time.Second, took: 4 * time.Second, waiting: 1},
		{name: "held past the timeout", timeout: 5 * time.Second, freeAt: -1, wantErr: &store.LockedError{}, waited: 5 * time.Second, tookMin: 5 * time.Second, took: 5 * time.Second, waiting: 1},
		{name: "no wait", timeout: 0, freeAt: -1, wantErr: &store.LockedError{}, waited: 0, took: 0, waiting: 0},
		{name: "another error", timeout: 5 * time.Second, freeAt: -1, other: boom, wantErr: boom, took: 0},
		{name: "interrupted", timeout: time.Minute, freeAt: -1, cancelAt: 2 * time.Second, wantErr: stop, tookMin: 2 * time.Second, took: 2 * time.Second, waiting: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				if tt.cancelAt > 0 {
					time.AfterFunc(tt.cancelAt, func() { cancel(stop) })
				}
				start := time.Now()
				waiting := 0
				w := store.Wait{Timeout: tt.timeout, Waiting: func(held *store.LockedError) {
					waiting++
					if held.PID != "42" {
						t.Errorf("Waiting got %+v, want the holder's PID", held)
					}
				}}
				err := w.Do(ctx, func() error {
					if tt.other != nil {
						return tt.other
					}
					if tt.freeAt >= 0 && time.Since(start) >= tt.freeAt {
						return nil
					}
					return &store.LockedError{Path: "b.duckdb", PID: "42"}
				})
				took := time.Since(start)
				var le *store.LockedError
				switch want := tt.wantErr.(type) {
				case nil:
					if err != nil {
						t.Errorf("Do = %v, want nil", err)
					}
				case *store.LockedError:
					if !errors.As(err, &le) || le.Waited != tt.waited {
						t.Errorf("Do = %#v, want a LockedError with Waited %v", err, tt.waited)
					}
				default:
					if !errors.Is(err, want) {
						t.Errorf("Do = %v, want %v", err, want)
					}
				}
				if took < tt.tookMin || took > tt.took {
					t.Errorf("Do took %v, want %v to %v", took, tt.tookMin, tt.took)
				}
				if waiting != tt.waiting {
					t.Errorf("Waiting called %d times, want %d", waiting, tt.waiting)
				}
			})
		})
	}
}

func TestFormatWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute:               "5m",
		30 * time.Second:              "30s",
		time.Hour:                     "1h",
		90 * time.Minute:              "1h30m",
		90 * time.Second:              "1m30s",
		1500 * time.Millisecond:       "1.5s",
		250 * time.Millisecond:        "250ms",
		2*time.Hour + 5*time.Second:   "2h0m5s",
		24*time.Hour + 30*time.Minute: "24h30m",
	} {
		if got := store.FormatWait(d); got != want {
			t.Errorf("FormatWait(%v) = %q, want %q", d, got, want)
		}
	}
}
