package ingest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/store"
)

// openInputs opens every input before anything is read, so that a missing, empty, binary or
// ID-less file fails the run before a single row is loaded or a request is sent.
func openInputs(cfg *Config) ([]*idlist.Reader, error) {
	readers := make([]*idlist.Reader, 0, len(cfg.Inputs))
	for _, name := range cfg.Inputs {
		r, err := openInput(cfg, name)
		if err != nil {
			closeAll(readers)
			return nil, err
		}
		readers = append(readers, r)
	}
	return readers, nil
}

func openInput(cfg *Config, name string) (*idlist.Reader, error) {
	if cfg.FS == nil {
		return idlist.Open(name, cfg.Stdin, cfg.Read)
	}
	f, err := cfg.FS.Open(name)
	if err != nil {
		return nil, err
	}
	r, err := idlist.NewReader(name, f, cfg.Read)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func closeAll(rs []*idlist.Reader) {
	for _, r := range rs {
		r.Close()
	}
}

// campaignSet collects the campaigns of the rows loaded. Rows of one campaign mostly
// come together, so the set is looked up only when the campaign changes.
type campaignSet struct {
	last string
	seen map[string]struct{}
}

func (s *campaignSet) add(campaign string) {
	if s.seen == nil {
		s.seen = make(map[string]struct{})
	} else if campaign == s.last {
		return
	}
	s.last = campaign
	s.seen[campaign] = struct{}{}
}

// sorted returns the campaigns by name.
func (s *campaignSet) sorted() []string {
	return slices.Sorted(maps.Keys(s.seen))
}

// load reads the inputs and loads them in chunks of cfg.LoadChunk rows, each committed
// on its own (see store.Load: the load still reads as all or nothing). On failure the
// messages it added are taken back before it returns. The campaigns of the rows staged
// are added to campaigns.
func load(ctx context.Context, db *store.DB, conn *sql.Conn, runID int64, readers []*idlist.Reader, cfg *Config, campaigns *campaignSet) (st store.LoadCounts, err error) {
	l, err := db.StartLoad(ctx, conn, store.LoadOptions{
		RunID: runID, At: time.Now().UTC(), RefreshAll: cfg.Refresh == RefreshAll,
	})
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			if uerr := l.Undo(); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
		l.Close()
	}()

	// The files are read and parsed on a goroutine of their own, ahead of the rows staged
	// here, so that parsing the next rows overlaps DuckDB's work on the chunk before.
	readCtx, stopReading := context.WithCancel(ctx)
	batches, reading := readAhead(readCtx, readers)
	// The readers are the caller's to close once this returns: the goroutine must be done
	// with them by then.
	defer func() { stopReading(); reading.Wait() }()
	staged := 0
	for b := range batches {
		// The reader may send a few more batches after an interrupt (its send does not
		// prefer ctx over a free slot): staging stops at the next batch instead.
		if ctx.Err() != nil {
			return l.Counts(), context.Cause(ctx)
		}
		for _, it := range b.items {
			if it.rej != nil {
				rej := it.rej
				if err := l.Reject(&store.Rejection{File: rej.File, Line: rej.Line, Campaign: rej.Campaign,
					MessageID: rej.ID, Reason: rej.Reason, Kind: rej.Kind, Raw: rej.Raw}); err != nil {
					return l.Counts(), fmt.Errorf("%s line %d: store rejected row: %w", rej.File, rej.Line, err)
				}
				continue
			}
			row := it.row
			if err := l.Stage(&store.Message{MessageID: row.ID, Campaign: row.Campaign,
				SourceFile: row.File, SourceLine: row.Line, Recipient: row.Recipient, SentAt: row.SentAt,
				CustomerMessageID: row.CustomerMessageID, MessagelistID: row.MessagelistID}); err != nil {
				return l.Counts(), fmt.Errorf("%s line %d: stage row: %w", row.File, row.Line, err)
			}
			campaigns.add(row.Campaign)
			if staged++; staged == cfg.LoadChunk {
				if err := l.Settle(ctx); err != nil {
					return l.Counts(), err
				}
				staged = 0
			}
		}
		if b.err != nil {
			return l.Counts(), b.err
		}
	}
	if ctx.Err() != nil {
		return l.Counts(), context.Cause(ctx)
	}
	if err := l.Settle(ctx); err != nil {
		return l.Counts(), err
	}
	if st = l.Counts(); cfg.Strict && st.Rejected > 0 {
		// Keep the evidence (rejected_rows) but load no message: the deferred undo takes
		// them back, and the caller fails the run.
		st.NewMessages, st.ToAsk = 0, 0
		return st, &StrictError{Rejected: st.Rejected}
	}
	return l.Finish(ctx)
}

// readBatch is a run of input rows in file order, each a row or a rejection, and the
// error that ended the reading after them, if any.
type readBatch struct {
	items []readItem
	err   error
}

type readItem struct {
	row *idlist.Row
	rej *idlist.Rejected
}

// readBatchSize is how many rows go to the load at a time: a channel operation per row
// would cost more than parsing it.
const readBatchSize = 1024

// readAhead reads readers in turn, one after the other, and sends their rows in batches
// until they end, one fails (its error comes with the last batch) or ctx ends (the channel
// is then closed without an error: the caller sees ctx). It keeps up to four batches ahead
// of the load, so memory stays bounded however large the files. The WaitGroup is done
// when the goroutine has stopped reading.
func readAhead(ctx context.Context, readers []*idlist.Reader) (<-chan readBatch, *sync.WaitGroup) {
	out := make(chan readBatch, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		send := func(b readBatch) bool {
			select {
			case out <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		b := readBatch{items: make([]readItem, 0, readBatchSize)}
		for _, r := range readers {
			for {
				row, rej, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.err = err
					send(b)
					return
				}
				b.items = append(b.items, readItem{row: row, rej: rej})
				if len(b.items) == readBatchSize {
					if !send(b) {
						return
					}
					b = readBatch{items: make([]readItem, 0, readBatchSize)}
				}
			}
		}
		if len(b.items) > 0 {
			send(b)
		}
	})
	return out, &wg
}

// StrictError fails a --strict run that met rejected rows; nothing was requested.
type StrictError struct{ Rejected int64 }

func (e *StrictError) Error() string {
	return fmt.Sprintf("--strict: %d input rows rejected (see the rejected_rows table); no message was loaded or requested", e.Rejected)
}

// todoPage is how many IDs streamTodo reads per query. duckdb-go materialises a query's
// whole result before the first row, so one query over a todo table of millions of IDs
// would hold all of them in memory for the length of the run.
const todoPage = 10_000

// todoItem is a message to ask about. answered says it has an answer in status_latest,
// which the new one replaces; the writer skips that work for batches of first answers.
type todoItem struct {
	id       string
	answered bool
}

// streamTodo sends the messages of the todo table, in input order, until done or ctx ends.
func streamTodo(ctx context.Context, conn *sql.Conn, out chan<- todoItem) error {
	last := int64(-1)
	for {
		n, err := store.TodoPage(ctx, conn, last, todoPage, func(seq int64, id string, answered bool) bool {
			last = seq
			select {
			case out <- todoItem{id: id, answered: answered}:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read messages to ask: %w", err)
		}
		if n == 0 || ctx.Err() != nil {
			return nil
		}
	}
}
