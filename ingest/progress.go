package ingest

import (
	"fmt"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how a run goes: a bar on a terminal, a log line every LogEvery otherwise
// (cron), so a long run is never silent.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(cfg *Config, total int64, stats *counters) *progress {
	p := &progress{done: make(chan struct{})}
	if cfg.ProgressBar != nil {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(cfg.ProgressBar),
			progressbar.OptionSetDescription("fetching"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
		p.loop(200*time.Millisecond, func(final bool) {
			s := stats.snapshot()
			if s.Errored > 0 || s.Retries > 0 {
				bar.Describe(fmt.Sprintf("fetching (%d failed, %d retries, %d×429)", s.Errored, s.Retries, s.RateLimited))
			}
			bar.Set64(s.Done)
			if final {
				bar.Finish()
			}
		})
		return p
	}
	start := time.Now()
	p.loop(cfg.LogEvery, func(final bool) {
		if final {
			return // the caller logs the summary
		}
		s := stats.snapshot()
		elapsed := time.Since(start)
		perSec := float64(s.Done) / elapsed.Seconds()
		attrs := []any{"done", s.Done, "total", total, "failed", s.Errored, "retries", s.Retries,
			"rate_limited", s.RateLimited, "per_second", fmt.Sprintf("%.1f", perSec)}
		if perSec > 0 && total > s.Done {
			attrs = append(attrs, "eta", (time.Duration(float64(total-s.Done)/perSec) * time.Second).Round(time.Second))
		}
		cfg.Logger.Info("fetch progress", attrs...)
	})
	return p
}

func (p *progress) loop(every time.Duration, tick func(final bool)) {
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				tick(false)
			case <-p.done:
				tick(true)
				return
			}
		}
	})
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}
