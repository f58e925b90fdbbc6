package store

import (
	"context"
	"fmt"
	"time"
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
	// StartedAt is when the run started; zero means now. A run recorded after it asked
	// (batstat status --record) gives the time it started asking.
	StartedAt time.Time
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
	var started any
	if !r.StartedAt.IsZero() {
		started = r.StartedAt
	}
	if err := db.QueryRowContext(ctx,
		`INSERT INTO runs (started_at, outcome, api_url, inputs, refresh, loading)
		 VALUES (coalesce($5::TIMESTAMPTZ, now()), $1, $2, $3, $4, true)
		 RETURNING run_id`, OutcomeRunning, r.APIURL, r.Inputs, r.Refresh, started,
	).Scan(&runID); err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return runID, nil
}

// AddMessages records the messages of a run that asks about IDs it was given rather than
// read from an input (batstat status --record): the IDs that messages does not hold yet
// are added under campaign, as loaded by the run at at; the others keep the campaign they
// have. In the same transaction it ends the run's loading state and records its ids_read
// and requested (the number of IDs). It returns how many messages it added.
func (db *DB) AddMessages(ctx context.Context, runID int64, at time.Time, campaign string, ids []string) (added int64, err error) {
	defer db.writing()()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("database %s: %w", db.Path, err)
	}
	defer conn.Close()
	err = inTx(ctx, conn, func() error {
		res, err := conn.ExecContext(ctx, `
			INSERT INTO messages (message_id, campaign, first_loaded_at, run_id)
			SELECT i.id, $3, $2, $1 FROM (SELECT DISTINCT unnest($4::VARCHAR[]) AS id) i
			WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = i.id)`, runID, at, campaign, ids)
		if err != nil {
			return fmt.Errorf("add messages: %w", err)
		}
		added, _ = res.RowsAffected()
		if _, err := conn.ExecContext(ctx,
			`UPDATE runs SET loading = false, ids_read = $2, requested = $2 WHERE run_id = $1`,
			runID, len(ids)); err != nil {
			return fmt.Errorf("record the run's messages: %w", err)
		}
		return nil
	})
	return added, err
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
