package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

// outcome is what a worker learned about one message: an answer (status set) or a failure
// after its retries (failure set).
type outcome struct {
	id         string
	replaces   bool      // the message has an answer in status_latest already
	sent       time.Time // when the last attempt's request left
	at         time.Time // when its answer came, in UTC
	attempts   int
	httpStatus int
	status     *smsbat.Status // nil for a failure; DeliveryStatus "not_found" for a 404
	body       []byte
	failure    *failure

	// synced, when not nil, makes this outcome a marker instead: the writer commits
	// everything received before it and then sends the result on synced (buffered), so that
	// a watch's next scan reads every answer of the pass before.
	synced chan<- error
	// cut makes this outcome a marker too: the writer hands what it holds to be committed
	// at once, without waiting for the commit, so that a pass's last commit, which its run
	// waits for, holds only the answers that come after the marker (see tailCut).
	cut bool
}

type failure struct {
	kind string // rate_limited | server_error | client_error | decode | network | timeout
	err  string
	body string
}

// writer is the only writer of answers: one goroutine stages them and one commits them,
// each into its own store.Batch on its own connection, so that building and appending the
// next batch overlaps DuckDB's work on the last, which took as long: one connection doing
// both in turn left a core idle (BenchmarkWriter).
//
// A batch is committed every FlushEvery or at BatchSize answers, so it stays small while the
// writer keeps up and grows when it falls behind, where DuckDB writes a batch of a whole row
// group (122,880 rows) straight to the file instead of through the WAL and a checkpoint.
type writer struct {
	stats *counters
	cfg   *Config
	// Two batches: while one is committed the other is staged. Commits happen one at a
	// time and in order, so a crash leaves a prefix of the run's batches.
	batches [2]*store.Batch
}

func newWriter(ctx context.Context, db *store.DB, runID int64, stats *counters, cfg *Config) (*writer, error) {
	w := &writer{stats: stats, cfg: cfg}
	for i := range w.batches {
		b, err := db.NewBatch(ctx, runID)
		if err != nil {
			w.close()
			return nil, err
		}
		w.batches[i] = b
	}
	return w, nil
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
		if empty(cur) {
			return nil
		}
		// Flushed on the staging side: in the commit it measured the same, and this way
		// the committer gets a batch that is wholly in its staging table.
		if err := cur.Flush(); err != nil {
			return fmt.Errorf("store batch of %d answers: %w", cur.Staged().Answered, err)
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
			if o.cut {
				if err := handOver(); err != nil {
					return drain(in, errors.Join(err, c.stop()))
				}
				continue
			}
			if o.synced != nil {
				err := handOver()
				if err == nil {
					err = c.settle()
				}
				o.synced <- err
				if err != nil {
					return drain(in, errors.Join(err, c.stop()))
				}
				continue
			}
			if empty(cur) {
				due.Reset(w.cfg.FlushEvery)
			}
			if err := stage(cur, &o); err != nil {
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
	staged, free chan *store.Batch
	done         chan struct{}
	failed       atomic.Bool
	err          error // read after done is closed
}

func (w *writer) startCommitter() *committer {
	c := &committer{
		staged: make(chan *store.Batch),
		free:   make(chan *store.Batch, len(w.batches)),
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
			c.free <- b
		}
	}()
	return c
}

// settle waits, while the stager holds one batch, for the other to be back from its commit
// (if it was handed over), and returns the first commit error.
func (c *committer) settle() error {
	b := <-c.free
	c.free <- b
	return c.err // written before b was returned
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
// through the WAL and a checkpoint.
func (w *writer) full(b *store.Batch) bool {
	n := b.Staged()
	return n.Answered >= int64(w.cfg.BatchSize) || n.Failed >= int64(w.cfg.BatchSize)
}

func empty(b *store.Batch) bool { return b.Staged() == store.BatchCounts{} }

// drain keeps receiving after a failed commit so that no worker blocks on a send forever,
// and answers a sync marker with err; the run then fails with err.
func drain(in <-chan outcome, err error) error {
	for o := range in {
		if o.synced != nil {
			o.synced <- err
		}
	}
	return err
}

// stage adds one outcome to b: an answer to the staging table, a failure to the batch's
// list (failures are few, and they go to fetch_errors inside the commit).
func stage(b *store.Batch, o *outcome) error {
	if o.failure != nil {
		b.AddFailure(store.Failure{MessageID: o.id, At: o.at, Attempts: o.attempts, Kind: o.failure.kind,
			HTTPStatus: o.httpStatus, Err: o.failure.err, Body: o.failure.body})
		return nil
	}
	if err := b.AddAnswer(&store.Answer{MessageID: o.id, At: o.at, HTTPStatus: o.httpStatus,
		Attempts: o.attempts, Status: o.status, Body: o.body, Replaces: o.replaces}); err != nil {
		return fmt.Errorf("store answer for %q: %w", o.id, err)
	}
	return nil
}

// commit stores a staged (and flushed) batch with the run's counters (store.Batch.Commit)
// and counts what it stored.
func (w *writer) commit(ctx context.Context, b *store.Batch) error {
	s := w.stats.snapshot()
	n, err := b.Commit(ctx, store.RunTotals{Requested: w.stats.requested.Load(), Retries: s.Retries, RateLimited: s.RateLimited})
	w.stats.stored(n.Answered, n.NotFound, n.Failed)
	return err
}

// close releases the batches' appenders and connections; run must have returned.
func (w *writer) close() error {
	var errs []error
	for _, b := range w.batches {
		if b != nil {
			errs = append(errs, b.Close())
		}
	}
	return errors.Join(errs...)
}
