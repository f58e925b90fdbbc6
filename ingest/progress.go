package ingest

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
type Progress interface {
	Start(total int64, counts func() Counts)
	Stop()
}

// progress calls the Config's Progress, if any.
type progress struct{ p Progress }

func startProgress(cfg *Config, total int64, stats *counters) progress {
	if cfg.Progress != nil {
		cfg.Progress.Start(total, stats.snapshot)
	}
	return progress{cfg.Progress}
}

func (p progress) stop() {
	if p.p != nil {
		p.p.Stop()
	}
}
