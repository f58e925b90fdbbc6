package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Wait says how long an open waits for a database file that another process holds. DuckDB
// lets one process write a file and excludes every other process while it does, and a
// writer is excluded while any process reads it: a cron job that meets an analyst's query,
// or an analyst who meets a fetch, waits a moment instead of failing.
//
// The zero Wait tries once.
type Wait struct {
	// Timeout is how long to keep trying after the first attempt found the file held.
	Timeout time.Duration
	// Waiting, when not nil, is called once, when the first attempt finds the file held and
	// there is time to wait: the caller says that it waits, and for how long.
	Waiting func(held *LockedError)
}

// The pause between attempts: short at first, as most holders are brief (a report), then
// longer, as DuckDB starts a database instance for each attempt.
const (
	firstPause = 50 * time.Millisecond
	maxPause   = time.Second
)

// Do calls attempt until it returns anything but a *LockedError (nil included), pausing
// between attempts, and returns that. When Timeout has passed it returns the last
// *LockedError with Waited set; when ctx ends first, an error wrapping context.Cause(ctx).
// The wait reads the time package's clock, so a test can run it in a testing/synctest
// bubble.
func (w Wait) Do(ctx context.Context, attempt func() error) error {
	start := time.Now()
	pause := firstPause
	for first := true; ; first = false {
		err := attempt()
		var held *LockedError
		if !errors.As(err, &held) {
			return err
		}
		left := w.Timeout - time.Since(start)
		if left <= 0 {
			held.Waited = w.Timeout
			return err
		}
		if first && w.Waiting != nil {
			w.Waiting(held)
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for database %s: %w", held.Path, context.Cause(ctx))
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// FormatWait writes a wait as people write it: 5m, 30s, 1h30m, 1.5s, not 5m0s.
func FormatWait(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
