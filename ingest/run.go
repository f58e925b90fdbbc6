package ingest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/batstat/batstat/store"
)

// Run outcomes as recorded in runs.outcome.
const (
	OutcomeRunning     = store.OutcomeRunning
	OutcomeOK          = "ok"                 // every message asked has an answer
	OutcomePartial     = "partial"            // finished, but some messages still failed
	OutcomeFailed      = "failed"             // stopped by a fatal error
	OutcomeInterrupted = "interrupted"        // stopped by a signal after flushing
	OutcomeCrashed     = store.OutcomeCrashed // found 'running' by a later open: the process died
)

// Summary is what a run did; the same figures are in its runs row.
type Summary struct {
	RunID       int64
	Outcome     string
	IDsRead     int64 // input rows with a usable ID, repeats included
	Rejected    int64 // input rows in rejected_rows
	NewMessages int64 // IDs first seen in this run
	Requested   int64 // messages this run set out to ask about
	Answered    int64 // messages with an answer stored (not_found included)
	NotFound    int64
	Failed      int64 // messages still without an answer after their retries
	Retries     int64
	RateLimited int64 // 429 answers seen
	Requests    int64 // HTTP attempts
	Elapsed     time.Duration
}

// LogAttrs renders the summary for a structured log line.
func (s *Summary) LogAttrs() []any {
	return []any{
		slog.Int64("run_id", s.RunID), slog.String("outcome", s.Outcome),
		slog.Int64("ids_read", s.IDsRead), slog.Int64("rejected", s.Rejected),
		slog.Int64("new_messages", s.NewMessages), slog.Int64("requested", s.Requested),
		slog.Int64("answered", s.Answered), slog.Int64("not_found", s.NotFound),
		slog.Int64("failed", s.Failed), slog.Int64("retries", s.Retries),
		slog.Int64("rate_limited", s.RateLimited), slog.Int64("requests", s.Requests),
		slog.Duration("elapsed", s.Elapsed.Round(time.Millisecond)),
	}
}

// Run runs the job on db: load the inputs, ask the API, store the answers, record the run.
// A Job runs once. The returned Summary is non-nil whenever a run row was created, also
// with an error. An interrupted run (ctx cancelled) returns context.Cause(ctx) after
// flushing every answer already received.
func (j *Job) Run(ctx context.Context, db *store.DB) (*Summary, error) {
	if j.ran {
		return nil, errRanTwice
	}
	j.ran = true
	cfg, readers := j.cfg, j.readers
	start := time.Now()
	log := cfg.Logger

	loadConn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db.Path, err)
	}
	defer loadConn.Close()
	if err := db.RecoverCrashed(ctx); err != nil {
		return nil, err
	}
	sum := &Summary{Outcome: OutcomeRunning}
	if sum.RunID, err = db.StartRun(ctx, store.RunStart{
		APIURL: cfg.APIURL, Inputs: strings.Join(cfg.Inputs, " "), Refresh: string(cfg.Refresh),
	}); err != nil {
		return nil, err
	}
	finish := func(outcome string, runErr error) (*Summary, error) {
		sum.Outcome = outcome
		sum.Elapsed = time.Since(start)
		// The run's own ctx may be cancelled: FinishRun writes regardless.
		if err := db.FinishRun(ctx, sum.RunID, outcome, runErr, store.RunCounts{
			IDsRead: sum.IDsRead, Rejected: sum.Rejected, Requested: sum.Requested,
			Answered: sum.Answered, NotFound: sum.NotFound, Failed: sum.Failed,
			Retries: sum.Retries, RateLimited: sum.RateLimited,
		}); err != nil {
			runErr = errors.Join(runErr, err)
		}
		return sum, runErr
	}

	ls, err := load(ctx, db, loadConn, sum.RunID, readers, &cfg)
	sum.IDsRead, sum.Rejected, sum.NewMessages, sum.Requested = ls.IDsRead, ls.Rejected, ls.NewMessages, ls.ToAsk
	if err != nil {
		if ctx.Err() != nil {
			return finish(OutcomeInterrupted, context.Cause(ctx))
		}
		return finish(OutcomeFailed, err)
	}
	log.Info("inputs loaded", "run_id", sum.RunID, "files", len(cfg.Inputs), "ids_read", ls.IDsRead,
		"rejected", ls.Rejected, "new_messages", ls.NewMessages, "to_ask", ls.ToAsk, "refresh", string(cfg.Refresh))

	fetchErr, writeErr := fetchAndStore(ctx, db, loadConn, sum, &cfg)
	switch {
	case writeErr != nil:
		return finish(OutcomeFailed, writeErr)
	case fetchErr != nil && ctx.Err() == nil:
		return finish(OutcomeFailed, fetchErr)
	case ctx.Err() != nil:
		return finish(OutcomeInterrupted, context.Cause(ctx))
	case sum.Failed > 0:
		return finish(OutcomePartial, nil)
	}
	return finish(OutcomeOK, nil)
}

// fetchAndStore streams the todo IDs through the worker pool into the writer. fetchErr is
// fatal for the run (rejected credentials); writeErr means answers could not be stored.
func fetchAndStore(ctx context.Context, db *store.DB, todoConn *sql.Conn, sum *Summary, cfg *Config) (fetchErr, writeErr error) {
	stats := &counters{}
	w, err := newWriter(ctx, db, sum.RunID, stats, cfg)
	if err != nil {
		return nil, err
	}

	// runCtx stops feeding and waiting; reqCtx ends requests on the wire only when the run
	// must stop at once (rejected credentials, unstorable answers), not on an interrupt.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	reqCtx, stopReqs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopReqs(nil)
	stopAll := func(err error) { stopReqs(err); stopRun(err) }

	ids := make(chan todoItem, 4*cfg.Concurrency)
	outcomes := make(chan outcome, 4*cfg.Concurrency)
	var wg sync.WaitGroup
	var feedErr error
	wg.Go(func() {
		defer close(ids)
		feedErr = streamTodo(runCtx, todoConn, ids)
	})
	var werr error
	wg.Go(func() {
		if werr = w.run(outcomes); werr != nil {
			stopAll(werr)
		}
	})
	prog := startProgress(cfg, sum.Requested, stats)

	f := &fetcher{cfg: cfg, lim: newLimiter(cfg.Rate, cfg.Burst), stats: stats}
	fetchErr = f.fetchAll(runCtx, reqCtx, stopAll, ids, outcomes)
	stopRun(nil) // unblock the feeder if the pool stopped early
	for range ids {
	}
	close(outcomes)
	wg.Wait()
	prog.stop()
	werr = errors.Join(werr, w.close())
	if feedErr != nil && fetchErr == nil && ctx.Err() == nil {
		fetchErr = feedErr
	}

	s := stats.snapshot()
	stats.mu.Lock()
	sum.Answered, sum.NotFound, sum.Failed = stats.answered, stats.notFound, stats.failed
	stats.mu.Unlock()
	sum.Retries, sum.RateLimited, sum.Requests = s.Retries, s.RateLimited, s.Requests
	return fetchErr, werr
}
