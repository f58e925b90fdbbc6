package ingest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/smsbat"
)

// outcome is what a worker learned about one message: an answer (status set) or a failure
// after its retries (failure set).
type outcome struct {
	id         string
	at         time.Time
	attempts   int
	httpStatus int
	status     *smsbat.Status // nil for a failure; DeliveryStatus "not_found" for a 404
	body       []byte
	failure    *failure
}

type failure struct {
	kind string // rate_limited | server_error | client_error | decode | network | timeout
	err  string
	body string
}

// writer is the only goroutine that writes answers: the Appender is not safe for concurrent
// use, and one writer with batched transactions keeps the load far from being the limit.
//
// Answers are appended to a staging table as they arrive and moved with set-based SQL at
// each commit: status_checks and status_latest are then filled by DuckDB's vectorised
// INSERT ... SELECT, and a batch waits in DuckDB (which can spill it), not on the Go heap.
// A batch is committed every FlushEvery or at BatchSize answers, so it stays small while the
// writer keeps up and grows when it falls behind, where DuckDB writes a batch of a whole row
// group (122,880 rows) straight to the file instead of through the WAL and a checkpoint.
type writer struct {
	conn   *sql.Conn
	runID  int64
	checks *duckdb.Appender
	errs   *duckdb.Appender
	stats  *counters
	cfg    *Config

	// The batch being staged: its answers are in batch_checks, its failures here.
	answered, notFound int64
	failed             []outcome
}

func newWriter(ctx context.Context, conn *sql.Conn, runID int64, stats *counters, cfg *Config) (*writer, error) {
	w := &writer{conn: conn, runID: runID, stats: stats, cfg: cfg}
	if _, err := conn.ExecContext(ctx,
		`CREATE OR REPLACE TEMP TABLE batch_checks AS SELECT * FROM status_checks LIMIT 0`); err != nil {
		return nil, fmt.Errorf("create staging table: %w", err)
	}
	err := conn.Raw(func(dc any) error {
		var err error
		if w.checks, err = duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "batch_checks"); err != nil {
			return err
		}
		w.errs, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "fetch_errors")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open appender: %w", err)
	}
	return w, nil
}

// run consumes outcomes until in is closed, committing a batch when it is full or
// FlushEvery after its first outcome, whichever comes first. It keeps going when ctx is
// cancelled (an interrupt must still flush what was fetched); it stops only on a database
// error.
func (w *writer) run(in <-chan outcome) error {
	ctx := context.Background()
	// due fires FlushEvery after the first outcome of a batch, so that a batch cut by size
	// is not followed by one cut short by a clock that kept running.
	due := time.NewTimer(w.cfg.FlushEvery)
	due.Stop()
	defer due.Stop()
	for {
		select {
		case o, ok := <-in:
			if !ok {
				return w.commit(ctx)
			}
			if w.empty() {
				due.Reset(w.cfg.FlushEvery)
			}
			if err := w.stage(&o); err != nil {
				return drain(in, err)
			}
			if w.full() {
				due.Stop()
				if err := w.commit(ctx); err != nil {
					return drain(in, err)
				}
			}
		case <-due.C:
			if err := w.commit(ctx); err != nil {
				return drain(in, err)
			}
		}
	}
}

// full says the batch has BatchSize answers, or as many failures. Answers alone are
// counted because only they go to status_checks: a batch of exactly one row group of them
// is written to the file whole, where one that falls a few rows short (the failures) goes
// through the WAL and a checkpoint (145k rows/s against 177k in BenchmarkWriter).
func (w *writer) full() bool {
	return w.answered >= int64(w.cfg.BatchSize) || len(w.failed) >= w.cfg.BatchSize
}

func (w *writer) empty() bool { return w.answered == 0 && len(w.failed) == 0 }

// drain keeps receiving after a failed commit so that no worker blocks on a send forever;
// the run then fails with err.
func drain(in <-chan outcome, err error) error {
	for range in {
	}
	return err
}

// stage adds one outcome to the batch: an answer to the staging table, a failure to the
// batch's list (failures are few, and they go to fetch_errors inside the commit).
func (w *writer) stage(o *outcome) error {
	if o.failure != nil {
		w.failed = append(w.failed, *o)
		return nil
	}
	w.answered++
	if o.status.DeliveryStatus == smsbat.StatusNotFound {
		w.notFound++
	}
	if err := w.checks.AppendRow(statusRow(w.runID, o)...); err != nil {
		return fmt.Errorf("store answer for %q: %w", o.id, err)
	}
	return nil
}

// commit stores the staged batch and the run's counters in a single transaction, so after
// a crash the database holds whole batches and counters that match them.
func (w *writer) commit(ctx context.Context) (err error) {
	if w.empty() {
		return nil
	}
	if err := w.checks.Flush(); err != nil {
		return fmt.Errorf("store batch of %d answers: %w", w.answered, err)
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin batch: %w", err)
	}
	defer func() {
		if err != nil {
			w.conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	for i := range w.failed {
		o := &w.failed[i]
		if err := w.errs.AppendRow(w.runID, o.id, o.at, int32(o.attempts), o.failure.kind,
			nullInt(o.httpStatus), sanitize(o.failure.err), nullable(sanitize(o.failure.body))); err != nil {
			return fmt.Errorf("store fetch error of %q: %w", o.id, err)
		}
	}
	if err := w.errs.Flush(); err != nil {
		return fmt.Errorf("store %d fetch errors: %w", len(w.failed), err)
	}
	for _, q := range []string{
		`INSERT INTO status_checks SELECT * FROM batch_checks`,
		`DELETE FROM status_latest WHERE message_id IN (SELECT message_id FROM batch_checks)`,
		`INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM batch_checks`,
		`DELETE FROM batch_checks`,
	} {
		if _, err := w.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store batch of %d answers: %w", w.answered, err)
		}
	}
	failed := int64(len(w.failed))
	s := w.stats.snapshot()
	if _, err := w.conn.ExecContext(ctx, `
		UPDATE runs SET answered = answered + $2, not_found = not_found + $3, failed = failed + $4,
		       retries = $5, rate_limited = $6
		WHERE run_id = $1`, w.runID, w.answered, w.notFound, failed, s.Retries, s.RateLimited); err != nil {
		return fmt.Errorf("update run counters: %w", err)
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	w.stats.stored(w.answered, w.notFound, failed)
	w.answered, w.notFound = 0, 0
	clear(w.failed)
	w.failed = w.failed[:0]
	return nil
}

func (w *writer) close() error {
	return errors.Join(w.checks.Close(), w.errs.Close())
}

// statusRow is one status_checks row, in the table's column order.
func statusRow(runID int64, o *outcome) []driver.Value {
	s := o.status
	return []driver.Value{
		o.id, runID, o.at, int32(o.httpStatus), s.DeliveryStatus,
		nullInt64(s.PartsCount), money(s.Cost), nullInt64(s.MessagelistID),
		money(s.Rate), money(s.RateAmount), nullable(s.RateCurrency),
		money(s.BillAmount), nullable(s.BillCurrency),
		jsonOrNull(s.Fallbacks, s.Fallbacks == nil), jsonOrNull(s.ExtendedStatuses, s.ExtendedStatuses == nil),
		int32(o.attempts), nullable(sanitize(string(o.body))),
	}
}

// money hands the Appender an int64 of micro-units: into DECIMAL(18,6) that is stored
// exactly, where a float64 or a duckdb.Decimal of another scale is silently rescaled.
func money(m *smsbat.Money) driver.Value {
	if m == nil {
		return nil
	}
	return int64(*m)
}

func nullInt64(p *int64) driver.Value {
	if p == nil {
		return nil
	}
	return *p
}

func nullInt(v int) driver.Value {
	if v == 0 {
		return nil
	}
	return int32(v)
}

// jsonOrNull is a JSON column value: the Appender JSON-encodes a slice or map itself (a Go
// string would be stored double-encoded), so v is passed as it is, or NULL when absent.
func jsonOrNull(v any, absent bool) driver.Value {
	if absent {
		return nil
	}
	return v
}
