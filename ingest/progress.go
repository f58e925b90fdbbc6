package ingest

import "time"

// Counts is how far a run has got. Every figure only grows during a run.
type Counts struct {
	Requests    int64 // HTTP attempts made, retries included
	Done        int64 // messages finished, answered or failed (not necessarily stored yet)
	Errored     int64 // messages finished as failures after their retries
	Retries     int64 // attempts after a message's first
	RateLimited int64 // 429 answers seen
}

// Progress is told how a run goes, so that the caller can show it: a bar on a terminal, a
// log line now and then in a cron job's log. The engine draws nothing itself.
//
// A run calls Start once the messages to ask are known, before the first request, with
// their number and a function that returns the current Counts; that function is cheap,
// safe to call from any goroutine, and valid until Stop returns. The run calls Stop once
// the last request has ended, whether the run succeeded, failed or was interrupted, and
// before it returns its Summary. A run whose inputs fail to load calls neither. A Progress
// set in a Config that serves several runs is started and stopped once per run.
//
// A run that asks in passes (Config.Watch, RefreshDue) starts and stops it once per pass
// that asks anything, with that pass's number of messages, and Counts counted from the
// pass's start.
type Progress interface {
	Start(total int64, counts func() Counts)
	Stop()
}

// WatchStatus is how a watch stands while it waits for its next pass.
type WatchStatus struct {
	Settled int64     // messages of the input that reached a terminal status
	Pending int64     // messages without one that the schedule will ask again
	GivenUp int64     // messages without one, older than GiveUpAfter: no longer asked
	Next    time.Time // when the next pass starts
}

// Watcher is a Progress that a watch (Config.Watch) also tells how it stands each time it
// is about to wait for its next pass, after the Stop of the pass before.
type Watcher interface {
	Progress
	Waiting(WatchStatus)
}

// progress calls the Config's Progress, if any.
type progress struct{ p Progress }

// startProgress starts the Config's Progress for a pass of total messages, counting from
// what stats hold now.
func startProgress(cfg *Config, total int64, stats *counters) progress {
	if cfg.Progress != nil {
		base := stats.snapshot()
		cfg.Progress.Start(total, func() Counts { return stats.snapshot().since(base) })
	}
	return progress{cfg.Progress}
}

// since returns c counted from base.
func (c Counts) since(base Counts) Counts {
	return Counts{c.Requests - base.Requests, c.Done - base.Done, c.Errored - base.Errored,
		c.Retries - base.Retries, c.RateLimited - base.RateLimited}
}

// waiting tells the Config's Progress, if it is a Watcher, how a watch stands.
func waiting(cfg *Config, st WatchStatus) {
	if w, ok := cfg.Progress.(Watcher); ok {
		w.Waiting(st)
	}
}

func (p progress) stop() {
	if p.p != nil {
		p.p.Stop()
	}
}
