package ingest

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	RunID    int64
	Outcome  string
	IDsRead  int64 // input rows with a usable ID, repeats included
	Rejected int64 // input rows in rejected_rows
	// RejectedBy counts Rejected by kind: store.KindDuplicate, store.KindAlreadyInCampaign
	// and the idlist.Kind* of rows that could not be read.
	RejectedBy  map[string]int64
	NewMessages int64 // IDs first seen in this run
	// Requested counts the messages this run set out to ask about (runs.requested): those of
	// its one pass, or for a run that asks in passes, those of each pass, a message once per
	// pass that asks it. Asked counts those it did ask, at least once per pass: fewer when it
	// was interrupted or stopped by a fatal error. Answered counts those with an answer
	// stored (not_found included) and Failed those still without one after their retries.
	Requested int64
	Asked     int64
	Answered  int64
	NotFound  int64
	Failed    int64
	// Failing counts the messages whose last attempt in this run failed: Failed, but for a
	// run that asks in passes, where a later pass may have got the answer.
	Failing     int64
	Retries     int64
	RateLimited int64 // 429 answers seen
	Requests    int64 // HTTP attempts
	// Responses counts the HTTP attempts by the status code answered; key 0 counts the
	// attempts that got no answer (network error, timeout). They add up to Requests.
	Responses map[int]int64
	// Campaigns are the campaigns of the input rows loaded (rejected rows aside), by name.
	Campaigns []string
	Elapsed   time.Duration

	// Pushed counts what the loads of the webhook spool stored (Config.WebhookSpool).
	Pushed store.PushCounts

	// Scheduled says the run asked by the schedule (RefreshDue, or a Watch); then the
	// figures below are those of its last look at the input.
	Scheduled bool
	Passes    int   // passes that asked anything
	Pending   int64 // messages of the input without a terminal status, but those given up
	GivenUp   int64 // messages of the input without one, older than GiveUpAfter
}

// LogAttrs renders the summary for a structured log line. to_ask is Requested, asked is
// Asked; elapsed_s is in seconds, a number in text and JSON logs alike.
func (s *Summary) LogAttrs() []any {
	attrs := []any{
		slog.Int64("run_id", s.RunID), slog.String("outcome", s.Outcome),
		slog.Int64("ids_read", s.IDsRead), slog.Int64("rejected", s.Rejected), rejectedBy(s.RejectedBy),
		slog.Int64("new_messages", s.NewMessages), slog.Int64("to_ask", s.Requested),
		slog.Int64("asked", s.Asked),
		slog.Int64("answered", s.Answered), slog.Int64("not_found", s.NotFound),
		slog.Int64("failed", s.Failed), slog.Int64("retries", s.Retries),
		slog.Int64("rate_limited", s.RateLimited), slog.Int64("requests", s.Requests),
		slog.Float64("elapsed_s", s.Elapsed.Round(time.Millisecond).Seconds()),
	}
	if s.Pushed != (store.PushCounts{}) {
		attrs = append(attrs, slog.Int64("pushed_loaded", s.Pushed.Loaded))
	}
	if s.Scheduled {
		attrs = append(attrs, slog.Int("passes", s.Passes), slog.Int64("pending", s.Pending),
			slog.Int64("given_up", s.GivenUp), slog.Int64("failing", s.Failing))
	}
	return attrs
}

// rejectedBy is the attribute that counts rejected rows by kind, the most frequent first:
// rejected_by.duplicate=2 rejected_by.empty_message_id=1 in text, an object in JSON. It is
// left out when nothing was rejected.
func rejectedBy(counts map[string]int64) slog.Attr {
	kinds := slices.Collect(maps.Keys(counts))
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b))
	})
	attrs := make([]any, 0, len(kinds))
	for _, k := range kinds {
		attrs = append(attrs, slog.Int64(k, counts[k]))
	}
	return slog.Group("rejected_by", attrs...)
}

// Run runs the job on db: load the inputs, ask the API, store the answers, record the run.
// A Job runs once. The returned Summary is non-nil whenever a run row was created, also
// with an error. An interrupted run (ctx cancelled) returns context.Cause(ctx) after
// flushing every answer already received.
func (j *Job) Run(ctx context.Context, db *store.DB) (*Summary, error) {
	if j.ran {
		return nil, errRanTwice
	}
	if j.cfg.DryRun {
		return nil, errors.New("fetch: a dry run is planned, not run")
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

	// Before the load, which leaves out of the todo table the messages that are terminal.
	if err := loadRunSpool(ctx, db, &cfg, sum); err != nil {
		if ctx.Err() != nil {
			return finish(OutcomeInterrupted, context.Cause(ctx))
		}
		return finish(OutcomeFailed, err)
	}
	var campaigns campaignSet
	ls, err := load(ctx, db, loadConn, sum.RunID, readers, &cfg, &campaigns)
	sum.Campaigns = campaigns.sorted()
	sum.IDsRead, sum.Rejected, sum.NewMessages, sum.Requested = ls.IDsRead, ls.Rejected, ls.NewMessages, ls.ToAsk
	sum.RejectedBy = ls.RejectedBy
	if err != nil {
		if ctx.Err() != nil {
			return finish(OutcomeInterrupted, context.Cause(ctx))
		}
		return finish(OutcomeFailed, err)
	}
	log.Info("inputs loaded", "run_id", sum.RunID, "files", len(cfg.Inputs), "ids_read", ls.IDsRead,
		"rejected", ls.Rejected, rejectedBy(ls.RejectedBy), "new_messages", ls.NewMessages, "to_ask", ls.ToAsk, "refresh", string(cfg.Refresh))

	fetchErr, writeErr := fetchAndStore(ctx, db, loadConn, sum, ls.ToAsk, start, &cfg)
	switch {
	case writeErr != nil:
		return finish(OutcomeFailed, writeErr)
	case fetchErr != nil && ctx.Err() == nil:
		return finish(OutcomeFailed, fetchErr)
	case ctx.Err() != nil:
		return finish(OutcomeInterrupted, context.Cause(ctx))
	case sum.Failing > 0:
		return finish(OutcomePartial, nil)
	}
	return finish(OutcomeOK, nil)
}

// fetchAndStore asks the API through the worker pool and stores the answers through the
// writer, in one pass over the todo table, or in the passes the schedule makes (see
// session.run). fetchErr is fatal for the run (rejected credentials); writeErr means
// answers could not be stored.
func fetchAndStore(ctx context.Context, db *store.DB, todoConn *sql.Conn, sum *Summary, toAsk int64, start time.Time, cfg *Config) (fetchErr, writeErr error) {
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

	outcomes := make(chan outcome, 4*cfg.Concurrency)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		if werr = w.run(outcomes); werr != nil {
			stopAll(werr)
		}
	})
	s := &session{
		cfg: cfg, conn: todoConn, sum: sum, toAsk: toAsk, start: start, stats: stats,
		f:        &fetcher{cfg: cfg, lim: newLimiter(cfg.Rate, cfg.Burst), stats: stats},
		outcomes: outcomes, reqCtx: reqCtx, stopAll: stopAll,
		loadSpool: func(ctx context.Context) error { return loadRunSpool(ctx, db, cfg, sum) },
	}
	fetchErr = s.run(runCtx)
	stopRun(nil)
	close(outcomes)
	wg.Wait()
	werr = errors.Join(werr, w.close())

	s2 := stats.snapshot()
	stats.mu.Lock()
	sum.Answered, sum.NotFound, sum.Failed = stats.answered, stats.notFound, stats.failed
	stats.mu.Unlock()
	sum.Requested, sum.Asked = stats.requested.Load(), stats.asked.Load()
	sum.Retries, sum.RateLimited, sum.Requests = s2.Retries, s2.RateLimited, s2.Requests
	sum.Responses = stats.statuses()
	if !sum.Scheduled {
		sum.Failing = sum.Failed
	}
	return fetchErr, werr
}
