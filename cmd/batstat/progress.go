package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/batstat/batstat/ingest"
)

// progressLogEvery is how often a fetch without a terminal logs its progress, so that a
// long cron run is never silent.
const progressLogEvery = 10 * time.Second

// barRefresh is how often the progress bar is redrawn.
const barRefresh = 200 * time.Millisecond

// newProgress returns how a fetch shows its progress: a bar on w (a terminal's stderr), or
// else a "fetch progress" line on log every progressLogEvery.
func newProgress(w io.Writer, bar bool, log *slog.Logger) ingest.Progress {
	if bar {
		return &barProgress{w: w}
	}
	return &logProgress{log: log, every: progressLogEvery}
}

// barProgress draws a progress bar.
type barProgress struct {
	w io.Writer
	t ticker
}

func (p *barProgress) Start(total int64, counts func() ingest.Counts) {
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("fetching"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(barRefresh),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
	p.t.start(barRefresh, func(final bool) {
		s := counts()
		if s.Errored > 0 || s.Retries > 0 {
			bar.Describe(fmt.Sprintf("fetching (%d failed, %d retries, %d×429)", s.Errored, s.Retries, s.RateLimited))
		}
		bar.Set64(s.Done)
		if final {
			bar.Finish()
		}
	})
}

func (p *barProgress) Stop() { p.t.stop() }

// logProgress writes a log line every so often; the caller logs the summary at the end.
type logProgress struct {
	log   *slog.Logger
	every time.Duration
	t     ticker
}

func (p *logProgress) Start(total int64, counts func() ingest.Counts) {
	start := time.Now()
	p.t.start(p.every, func(final bool) {
		if final {
			return
		}
		s := counts()
		perSec := float64(s.Done) / time.Since(start).Seconds()
		// Numbers, durations in seconds: JSON logs get numbers, not strings or nanoseconds.
		attrs := []any{"done", s.Done, "total", total, "failed", s.Errored, "retries", s.Retries,
			"rate_limited", s.RateLimited, "per_second", math.Round(perSec*10) / 10}
		if perSec > 0 && total > s.Done {
			attrs = append(attrs, "eta_s", math.Round(float64(total-s.Done)/perSec))
		}
		p.log.Info("fetch progress", attrs...)
	})
}

func (p *logProgress) Stop() { p.t.stop() }

// ticker calls tick every interval from start until stop, then once more with final set.
type ticker struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func (t *ticker) start(every time.Duration, tick func(final bool)) {
	t.done = make(chan struct{})
	done := t.done
	t.wg.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				tick(false)
			case <-done:
				tick(true)
				return
			}
		}
	})
}

func (t *ticker) stop() {
	close(t.done)
	t.wg.Wait()
}
