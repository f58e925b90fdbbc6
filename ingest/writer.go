package ingest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

// outcome is what a worker learned about one message: an answer (status set) or a failure
// after its retries (failure set).
type outcome struct {
	id         string
	replaces   bool // the message has an answer in status_latest already
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

// writer is the only writer of answers: one goroutine stages them and one commits them,
// each on its own connection, so that building and appending the next batch overlaps
// DuckDB's work on the last, which took as long: one connection doing both in turn left a
// core idle (BenchmarkWriter). The Appender is not safe for concurrent use, so each batch
// has its own.
//
// Answers are appended to a staging table as they arrive and moved with set-based SQL at
// each commit: status_checks and status_latest are then filled by DuckDB's vectorised
// INSERT ... SELECT, and a batch waits in DuckDB (which can spill it), not on the Go heap.
// A batch is committed every FlushEvery or at BatchSize answers, so it stays small while the
// writer keeps up and grows when it falls behind, where DuckDB writes a batch of a whole row
// group (122,880 rows) straight to the file instead of through the WAL and a checkpoint.
type writer struct {
	runID int64
	stats *counters
	cfg   *Config
	// Two batches: while one is committed the other is staged. Commits happen one at a
	// time and in order, so a crash leaves a prefix of the run's batches.
	batches [2]*batch

	// Owned by the staging goroutine: the row being built, and the run ID boxed once.
	row        []driver.Value
	runIDValue driver.Value
}

// batch is a staging area: temp tables belong to a connection, and so do appenders.
type batch struct {
	conn   *sql.Conn
	checks *duckdb.Appender // into the connection's temp table batch_checks
	errs   *duckdb.Appender // into fetch_errors, inside the commit's transaction

	// What is staged: answers in batch_checks, failures here. replacing counts the answers
	// to messages that have one in status_latest already.
	answered, notFound, replacing int64
	failed                        []outcome
}

func newWriter(ctx context.Context, db *store.DB, runID int64, stats *counters, cfg *Config) (*writer, error) {
	w := &writer{runID: runID, stats: stats, cfg: cfg, runIDValue: runID}
	for i := range w.batches {
		b, err := newBatch(ctx, db)
		if err != nil {
			w.close()
			return nil, err
		}
		w.batches[i] = b
	}
	return w, nil
}

func newBatch(ctx context.Context, db *store.DB) (*batch, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db.Path, err)
	}
	b := &batch{conn: conn}
	if err := conn.Raw(func(dc any) error {
		var err error
		b.errs, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "fetch_errors")
		return err
	}); err != nil {
		b.close()
		return nil, fmt.Errorf("open appender: %w", err)
	}
	if err := b.newStaging(ctx); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// newStaging replaces the staging table with an empty one, which frees the rows of the
// last batch (see freshTempTable).
func (b *batch) newStaging(ctx context.Context) error {
	var err error
	// On failure checks is nil: the old Appender is closed either way.
	b.checks, err = freshTempTable(ctx, b.conn, b.checks, "batch_checks",
		`CREATE OR REPLACE TEMP TABLE batch_checks AS SELECT * FROM status_checks LIMIT 0`)
	if err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	return nil
}

// run consumes outcomes until in is closed, handing a batch to the committer when it is
// full or FlushEvery after its first outcome, whichever comes first. It keeps going when
// ctx is cancelled (an interrupt must still flush what was fetched); it stops only on a
// database error, which it returns once the batches already handed over are settled.
func (w *writer) run(in <-chan outcome) error {
	c := w.startCommitter()
	cur := <-c.free
	// due fires FlushEvery after the first outcome of a batch, so that a batch cut by size
	// is not followed by one cut short by a clock that kept running.
	due := time.NewTimer(w.cfg.FlushEvery)
	due.Stop()
	defer due.Stop()
	// handOver sends cur to be committed and takes the other batch to stage into, waiting
	// while that one is still being committed.
	handOver := func() error {
		due.Stop()
		if cur.empty() {
			return nil
		}
		// Flushed on the staging side: in the commit it measured the same, and this way
		// the committer gets a batch that is wholly in its staging table.
		if err := cur.checks.Flush(); err != nil {
			return fmt.Errorf("store batch of %d answers: %w", cur.answered, err)
		}
		c.staged <- cur
		cur = <-c.free
		return nil
	}
	for {
		cut := false
		select {
		case o, ok := <-in:
			if !ok {
				err := handOver()
				return errors.Join(err, c.stop())
			}
			if cur.empty() {
				due.Reset(w.cfg.FlushEvery)
			}
			if err := w.stage(cur, &o); err != nil {
				return drain(in, errors.Join(err, c.stop()))
			}
			cut = w.full(cur)
		case <-due.C:
			cut = true
		}
		if cut {
			if err := handOver(); err != nil {
				return drain(in, errors.Join(err, c.stop()))
			}
			if c.failed.Load() {
				return drain(in, c.stop())
			}
		}
	}
}

// committer commits the batches sent to staged, in order, and returns each to free. After
// a failure it commits nothing more: a later batch must not land after an earlier one was
// lost.
type committer struct {
	staged, free chan *batch
	done         chan struct{}
	failed       atomic.Bool
	err          error // read after done is closed
}

func (w *writer) startCommitter() *committer {
	c := &committer{
		staged: make(chan *batch),
		free:   make(chan *batch, len(w.batches)),
		done:   make(chan struct{}),
	}
	for _, b := range w.batches {
		c.free <- b
	}
	go func() {
		defer close(c.done)
		for b := range c.staged {
			if c.err == nil {
				if c.err = w.commit(context.Background(), b); c.err != nil {
					c.failed.Store(true)
				}
			}
			b.reset()
			c.free <- b
		}
	}()
	return c
}

// stop waits for the batches handed over to be settled and returns the first commit error.
func (c *committer) stop() error {
	close(c.staged)
	<-c.done
	return c.err
}

// full says the batch has BatchSize answers, or as many failures. Answers alone are
// counted because only they go to status_checks: a batch of exactly one row group of them
// is written to the file whole, where one that falls a few rows short (the failures) goes
// through the WAL and a checkpoint (145k rows/s against 177k in BenchmarkWriter).
func (w *writer) full(b *batch) bool {
	return b.answered >= int64(w.cfg.BatchSize) || len(b.failed) >= w.cfg.BatchSize
}

func (b *batch) empty() bool { return b.answered == 0 && len(b.failed) == 0 }

func (b *batch) reset() {
	b.answered, b.notFound, b.replacing = 0, 0, 0
	clear(b.failed)
	b.failed = b.failed[:0]
}

// drain keeps receiving after a failed commit so that no worker blocks on a send forever;
// the run then fails with err.
func drain(in <-chan outcome, err error) error {
	for range in {
	}
	return err
}

// stage adds one outcome to b: an answer to the staging table, a failure to the batch's
// list (failures are few, and they go to fetch_errors inside the commit).
func (w *writer) stage(b *batch, o *outcome) error {
	if o.failure != nil {
		b.failed = append(b.failed, *o)
		return nil
	}
	b.answered++
	if o.status.DeliveryStatus == smsbat.StatusNotFound {
		b.notFound++
	}
	if o.replaces {
		b.replacing++
	}
	w.row = statusRow(w.row, w.runIDValue, o)
	if err := b.checks.AppendRow(w.row...); err != nil {
		return fmt.Errorf("store answer for %q: %w", o.id, err)
	}
	return nil
}

// commit stores a staged (and flushed) batch and the run's counters in a single
// transaction, so after a crash the database holds whole batches and counters that match
// them.
func (w *writer) commit(ctx context.Context, b *batch) (err error) {
	if _, err := b.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin batch: %w", err)
	}
	defer func() {
		if err != nil {
			b.conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	for i := range b.failed {
		o := &b.failed[i]
		if err := b.errs.AppendRow(w.runID, o.id, o.at, int32(o.attempts), o.failure.kind,
			nullInt(o.httpStatus), sanitize(o.failure.err), nullable(sanitize(o.failure.body))); err != nil {
			return fmt.Errorf("store fetch error of %q: %w", o.id, err)
		}
	}
	if err := b.errs.Flush(); err != nil {
		return fmt.Errorf("store %d fetch errors: %w", len(b.failed), err)
	}
	stmts := []string{`INSERT INTO status_checks SELECT * FROM batch_checks`}
	if b.replacing > 0 {
		// Skipped for a batch of first answers (a campaign's first fetch): the delete scans
		// status_latest whole unless the batch's IDs fall outside its range, so its cost
		// grows with the file (BENCHMARKS.md, "The delete").
		stmts = append(stmts, `DELETE FROM status_latest WHERE message_id IN (SELECT message_id FROM batch_checks)`)
	}
	stmts = append(stmts, `INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM batch_checks`)
	for _, q := range stmts {
		if _, err := b.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store batch of %d answers: %w", b.answered, err)
		}
	}
	failed := int64(len(b.failed))
	s := w.stats.snapshot()
	if _, err := b.conn.ExecContext(ctx, `
		UPDATE runs SET answered = answered + $2, not_found = not_found + $3, failed = failed + $4,
		       retries = $5, rate_limited = $6
		WHERE run_id = $1`, w.runID, b.answered, b.notFound, failed, s.Retries, s.RateLimited); err != nil {
		return fmt.Errorf("update run counters: %w", err)
	}
	if _, err := b.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	w.stats.stored(b.answered, b.notFound, failed)
	if err := b.newStaging(ctx); err != nil {
		return fmt.Errorf("empty staging table: %w", err)
	}
	return nil
}

// close releases the batches' appenders and connections; run must have returned.
func (w *writer) close() error {
	var errs []error
	for _, b := range w.batches {
		if b != nil {
			errs = append(errs, b.close())
		}
	}
	return errors.Join(errs...)
}

func (b *batch) close() error {
	var errs []error
	for _, a := range []*duckdb.Appender{b.checks, b.errs} {
		if a != nil {
			errs = append(errs, a.Close())
		}
	}
	return errors.Join(append(errs, b.conn.Close())...)
}

// statusRow fills row (reused from one answer to the next: the Appender copies the values)
// with one status_checks row, in the table's column order.
func statusRow(row []driver.Value, runID driver.Value, o *outcome) []driver.Value {
	s := o.status
	return append(row[:0],
		o.id, runID, o.at, int32(o.httpStatus), s.DeliveryStatus,
		nullInt64(s.PartsCount), money(s.Cost), nullInt64(s.MessagelistID),
		money(s.Rate), money(s.RateAmount), nullable(s.RateCurrency),
		money(s.BillAmount), nullable(s.BillCurrency),
		jsonOrNull(s.Fallbacks, s.Fallbacks == nil), jsonOrNull(s.ExtendedStatuses, s.ExtendedStatuses == nil),
		int32(o.attempts), rawBody(o.body),
	)
}

// rawBody is the raw column: the body as received, or NULL when empty. A valid UTF-8 body
// goes to the Appender as []byte, which it copies into DuckDB as it is, where a string
// would cost a copy per answer first (a third of building a row); invalid UTF-8, which
// DuckDB refuses in a VARCHAR, is replaced as sanitize does.
func rawBody(b []byte) driver.Value {
	switch {
	case len(b) == 0:
		return nil
	case utf8.Valid(b):
		return b
	}
	return sanitize(string(b))
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
