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

// watchLogEvery is how often at most a watch without a terminal logs how it stands between
// passes, which may come every few seconds.
const watchLogEvery = time.Minute

// newProgress returns how a fetch shows its progress: a bar on w (a terminal's stderr), or
// else a "fetch progress" line on log every progressLogEvery.
func newProgress(w io.Writer, bar bool, log *slog.Logger) ingest.Progress {
	if bar {
		return &barProgress{w: w}
	}
	return &logProgress{log: log, every: progressLogEvery, watchEvery: watchLogEvery}
}

// endProgress ends what p shows on the terminal, once the run is over.
func endProgress(p ingest.Progress) {
	if b, ok := p.(*barProgress); ok {
		b.clearStatus()
	}
}

// barProgress draws a progress bar for each pass, and between the passes of a watch a
// status line, which the next bar replaces.
type barProgress struct {
	w      io.Writer
	t      ticker
	status bool // a status line is shown
}

// Waiting shows how a watch stands on one line, until the next pass.
func (p *barProgress) Waiting(st ingest.WatchStatus) {
	fmt.Fprintf(p.w, "\r\033[Kwatching: %d settled, %d pending, %d given up; next check %s",
		st.Settled, st.Pending, st.GivenUp, st.Next.Local().Format(time.TimeOnly))
	p.status = true
}

func (p *barProgress) clearStatus() {
	if p.status {
		fmt.Fprint(p.w, "\r\033[K")
		p.status = false
	}
}

func (p *barProgress) Start(total int64, counts func() ingest.Counts) {
	p.clearStatus()
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

	watchEvery  time.Duration
	lastWaiting time.Time // when Waiting last logged
}

// Waiting logs how a watch stands, at most once every watchEvery.
func (p *logProgress) Waiting(st ingest.WatchStatus) {
	now := time.Now()
	if !p.lastWaiting.IsZero() && now.Sub(p.lastWaiting) < p.watchEvery {
		return
	}
	p.lastWaiting = now
	p.log.Info("fetch watching", "settled", st.Settled, "pending", st.Pending, "given_up", st.GivenUp,
		"next_check", st.Next.Format(time.RFC3339), "next_in_s", math.Round(st.Next.Sub(now).Seconds()))
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
