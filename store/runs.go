package store

import (
	"context"
	"fmt"
)

// The outcomes of a runs row that store itself writes; the others (ok, partial, failed,
// interrupted) are the fetch's to decide.
const (
	// OutcomeRunning is a run in progress, or one whose process died.
	OutcomeRunning = "running"
	// OutcomeCrashed is a run found 'running' by RecoverCrashed: its process died.
	OutcomeCrashed = "crashed"
)

// RunStart is what a runs row records about a run when it starts.
type RunStart struct {
	APIURL  string // the API base URL (it holds no secret)
	Inputs  string // the FILE arguments, space separated
	Refresh string
}

// RunCounts are a run's counters, as its runs row holds them.
type RunCounts struct {
	IDsRead, Rejected, Requested int64 // from the load
	Answered, NotFound, Failed   int64 // answers and failures stored
	Retries, RateLimited         int64
}

// RecoverCrashed settles the runs a dead process left 'running' (the database lock says no
// live process has the file): the messages of a run that died while loading are taken
// back, so the next identical run loads them whole, and the runs are marked crashed.
func (db *DB) RecoverCrashed(ctx context.Context) error {
	defer db.writing()()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("database %s: %w", db.Path, err)
	}
	defer conn.Close()
	if err := undoLoad(ctx, conn, "outcome = $1", OutcomeRunning); err != nil {
		return fmt.Errorf("take back the messages of crashed runs: %w", err)
	}
	if _, err := conn.ExecContext(ctx,
		`UPDATE runs SET outcome = $1, finished_at = coalesce(finished_at, now()),
		        error = coalesce(error, 'the process ended without finishing the run')
		 WHERE outcome = $2`, OutcomeCrashed, OutcomeRunning); err != nil {
		return fmt.Errorf("mark crashed runs: %w", err)
	}
	return nil
}

// StartRun records a new run, 'running' and loading, and returns its ID.
func (db *DB) StartRun(ctx context.Context, r RunStart) (runID int64, err error) {
	defer db.writing()()
	if err := db.QueryRowContext(ctx,
		`INSERT INTO runs (started_at, outcome, api_url, inputs, refresh, loading) VALUES (now(), $1, $2, $3, $4, true)
		 RETURNING run_id`, OutcomeRunning, r.APIURL, r.Inputs, r.Refresh,
	).Scan(&runID); err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return runID, nil
}

// FinishRun records how a run ended: its outcome, the error that stopped it (nil for none)
// and its final counters. It writes even when ctx is cancelled: an interrupted run must
// still be recorded.
func (db *DB) FinishRun(ctx context.Context, runID int64, outcome string, runErr error, c RunCounts) error {
	defer db.writing()()
	var msg any
	if runErr != nil {
		msg = runErr.Error()
	}
	if _, err := db.ExecContext(context.WithoutCancel(ctx), `
		UPDATE runs SET finished_at = now(), outcome = $2, error = $3, ids_read = $4, rejected = $5,
		       requested = $6, answered = $7, not_found = $8, failed = $9, retries = $10, rate_limited = $11
		WHERE run_id = $1`, runID, outcome, msg, c.IDsRead, c.Rejected, c.Requested,
		c.Answered, c.NotFound, c.Failed, c.Retries, c.RateLimited); err != nil {
		return fmt.Errorf("record run outcome: %w", err)
	}
	return nil
}
