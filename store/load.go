package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Message is an accepted input row to load: a messages row if its ID is new.
type Message struct {
	MessageID, Campaign string
	SourceFile          string
	SourceLine          int64 // physical line, the header being line 1
	// Optional columns, "" (stored as NULL) when the input has none.
	Recipient, SentAt, CustomerMessageID, MessagelistID string
}

// Rejection is an input row that was not loaded: a rejected_rows row. Its strings must be
// valid UTF-8.
type Rejection struct {
	File      string
	Line      int64
	Campaign  string // "" = NULL
	MessageID string // "" = NULL
	Reason    string
	Raw       string // "" = NULL
}

// LoadCounts say what a load did so far.
type LoadCounts struct {
	IDsRead     int64 // messages staged, repeats included
	Rejected    int64 // rejected_rows rows: those handed to Reject, and campaign conflicts
	NewMessages int64 // IDs added to messages
	ToAsk       int64 // messages to ask, known once Finish has run
}

// Load is a run's load of its inputs, on one pinned connection: rows are staged with Stage
// and Reject and settled a chunk at a time by Settle, each chunk in one transaction:
// rejected rows recorded, new IDs added to messages, the IDs to ask appended to the
// connection's temp table todo (read back with TodoPage). Committing per chunk keeps the
// memory of a load bounded whatever the input's size; the whole load still reads as all or
// nothing, because the run is loading until Finish: message_status hides the messages of
// a loading run, Undo deletes them after a failed load, and RecoverCrashed those of a run
// that died while loading.
//
// Duplicates and campaign conflicts are settled in SQL rather than in Go: the Appender
// loses a whole batch on a duplicate key, and a set-based merge does not need every ID in
// memory.
//
// A Load is not safe for concurrent use.
type Load struct {
	db            *DB
	conn          *sql.Conn
	runID         int64
	at            time.Time
	refreshAll    bool
	seq           int64 // of the last row staged or rejected
	rows, rejects *duckdb.Appender
	closed        bool
	counts        LoadCounts
}

// LoadOptions say which run a load belongs to and what it asks.
type LoadOptions struct {
	RunID int64
	// At is the load's time: messages.first_loaded_at and rejected_rows.rejected_at.
	At time.Time
	// RefreshAll asks every message of the input again, terminal or not; otherwise only
	// those without a terminal status (see the is_terminal macro).
	RefreshAll bool
}

// StartLoad prepares a load on conn, a connection of db, which must stay pinned until the
// todo table has been read. On failure it has already undone the run's load (see Undo).
func (db *DB) StartLoad(ctx context.Context, conn *sql.Conn, opts LoadOptions) (*Load, error) {
	l := &Load{db: db, conn: conn, runID: opts.RunID, at: opts.At, refreshAll: opts.RefreshAll}
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE todo (seq BIGINT, message_id VARCHAR, answered BOOLEAN)`); err != nil {
		return nil, errors.Join(fmt.Errorf("create load tables: %w", err), l.Undo())
	}
	err := conn.Raw(func(dc any) error {
		var err error
		l.rejects, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "rejected_rows")
		return err
	})
	if err == nil {
		l.rows, err = freshTempTable(ctx, conn, nil, "input_rows", inputRowsTable)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open appender: %w", err), l.Undo())
	}
	return l, nil
}

// inputRowsTable stages one chunk of input rows. seq is the row's place in the run's input:
// of repeated rows, the first wins.
const inputRowsTable = `CREATE OR REPLACE TEMP TABLE input_rows (
	seq BIGINT, message_id VARCHAR, campaign VARCHAR, file VARCHAR, line BIGINT,
	recipient VARCHAR, sent_at VARCHAR, customer_message_id VARCHAR, messagelist_id VARCHAR)`

// Stage adds an accepted input row to the chunk.
func (l *Load) Stage(m *Message) error {
	l.seq++
	l.counts.IDsRead++
	return l.rows.AppendRow(l.seq, m.MessageID, m.Campaign, m.SourceFile, m.SourceLine,
		nullable(m.Recipient), nullable(m.SentAt), nullable(m.CustomerMessageID), nullable(m.MessagelistID))
}

// Reject records an input row that cannot be loaded, with the chunk.
func (l *Load) Reject(r *Rejection) error {
	// The Appender writes to rejected_rows by itself once it holds enough rows.
	defer l.db.writing()()
	l.seq++
	l.counts.Rejected++
	return l.rejects.AppendRow(l.runID, l.at, r.File, r.Line, nullable(r.Campaign),
		nullable(r.MessageID), r.Reason, nullable(r.Raw))
}

// Counts returns what the load did so far.
func (l *Load) Counts() LoadCounts { return l.counts }

// Settle commits the staged chunk: its rejected rows, its campaign conflicts, its new
// messages and its IDs to ask, then replaces the staging table with an empty one.
func (l *Load) Settle(ctx context.Context) error {
	var conflicts, added int64
	done := l.db.writing()
	err := errors.Join(l.rows.Flush(), l.rejects.Flush())
	if err != nil {
		err = fmt.Errorf("stage input rows: %w", err)
	} else {
		err = inTx(ctx, l.conn, func() error { return l.settle(ctx, &conflicts, &added) })
	}
	done()
	if err != nil {
		return err
	}
	l.counts.Rejected += conflicts
	l.counts.NewMessages += added
	rows, err := freshTempTable(ctx, l.conn, l.rows, "input_rows", inputRowsTable)
	if l.rows = rows; err != nil {
		return fmt.Errorf("empty input table: %w", err)
	}
	return nil
}

func (l *Load) settle(ctx context.Context, conflicts, added *int64) error {
	// The owner of an ID is the campaign it already has in messages, else the campaign of
	// its first row in this input. Rows naming another campaign are rejected with both
	// names. An owner from an earlier chunk of this run is named by its file and line.
	if err := l.exec(ctx, conflicts, "check campaign conflicts", `
		INSERT INTO rejected_rows (run_id, rejected_at, file, line, campaign, message_id, reason, raw)
		SELECT $1, $2, r.file, r.line, r.campaign, r.message_id,
		       'message ID already belongs to campaign ' || to_json(o.campaign) ||
		       ' (' || o.source || '); this row says ' || to_json(r.campaign),
		       NULL
		FROM input_rows r
		JOIN (
			SELECT message_id, campaign,
			       CASE WHEN run_id = $1 THEN source_file || ' line ' || source_line ELSE 'loaded before' END AS source
			FROM messages
			WHERE message_id IN (SELECT message_id FROM input_rows)
			UNION ALL
			SELECT f.message_id, f.campaign, f.file || ' line ' || f.line
			FROM (SELECT * FROM input_rows QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1) f
			WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = f.message_id)
		) o USING (message_id)
		WHERE r.campaign <> o.campaign`, l.runID, l.at); err != nil {
		return err
	}
	if err := l.exec(ctx, added, "add messages", `
		INSERT INTO messages (message_id, campaign, source_file, source_line, first_loaded_at, run_id,
		                      recipient, sent_at, customer_message_id, messagelist_id)
		SELECT message_id, campaign, file, line, $2, $1, recipient, sent_at, customer_message_id, messagelist_id
		FROM input_rows r
		WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = r.message_id)
		QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1`, l.runID, l.at); err != nil {
		return err
	}
	// The IDs to ask about, in input order: those of this input that belong to the campaign
	// the input names, were not already taken from an earlier chunk and, unless refreshing
	// all, whose latest answer is not terminal. The joins put the chunk on the build side,
	// not the whole of status_latest.
	return l.exec(ctx, nil, "select messages to ask", `
		INSERT INTO todo
		SELECT f.seq, f.message_id, s.message_id IS NOT NULL
		FROM (SELECT * FROM input_rows QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1) f
		JOIN messages m ON m.message_id = f.message_id AND m.campaign = f.campaign
		LEFT JOIN status_latest s ON s.message_id = f.message_id
		WHERE ($1 OR NOT is_terminal(s.deliverystatus))
		  AND f.message_id NOT IN (SELECT message_id FROM todo)
		ORDER BY f.seq`, l.refreshAll)
}

func (l *Load) exec(ctx context.Context, affected *int64, what, query string, args ...any) error {
	res, err := l.conn.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if affected != nil {
		*affected, _ = res.RowsAffected()
	}
	return nil
}

// Finish ends a load whose every chunk is settled: the run is no longer loading, so its
// messages show in message_status. It returns the counts, ToAsk included, and records
// them in the run's row.
func (l *Load) Finish(ctx context.Context) (LoadCounts, error) {
	defer l.db.writing()()
	if err := l.close(); err != nil {
		return l.counts, fmt.Errorf("stage input rows: %w", err)
	}
	if _, err := l.conn.ExecContext(ctx, "DROP TABLE input_rows"); err != nil {
		return l.counts, fmt.Errorf("drop input table: %w", err)
	}
	if err := l.conn.QueryRowContext(ctx, "SELECT count(*) FROM todo").Scan(&l.counts.ToAsk); err != nil {
		return l.counts, fmt.Errorf("count messages to ask: %w", err)
	}
	if _, err := l.conn.ExecContext(ctx,
		`UPDATE runs SET loading = false, ids_read = $2, rejected = $3, requested = $4 WHERE run_id = $1`,
		l.runID, l.counts.IDsRead, l.counts.Rejected, l.counts.ToAsk); err != nil {
		return l.counts, fmt.Errorf("record loaded messages: %w", err)
	}
	return l.counts, nil
}

// Undo takes back the messages the run added, keeping its rejected rows, and ends its
// loading state. It runs even when the load's ctx is cancelled: an interrupted load must
// not leave half of its messages behind.
func (l *Load) Undo() error {
	defer l.db.writing()()
	if err := l.close(); err != nil {
		return fmt.Errorf("stage input rows: %w", err)
	}
	if err := undoLoad(context.Background(), l.conn, "run_id = $1", l.runID); err != nil {
		return fmt.Errorf("take back the messages of run %d: %w", l.runID, err)
	}
	return nil
}

// Close releases the load's appenders; Finish and Undo call it. It may be called again.
func (l *Load) Close() error {
	if l.closed {
		return nil
	}
	// Closing flushes what is left of the rejected rows to rejected_rows.
	defer l.db.writing()()
	return l.close()
}

func (l *Load) close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, a := range []*duckdb.Appender{l.rows, l.rejects} {
		if a != nil { // nil when opening the appenders failed
			errs = append(errs, a.Close())
		}
	}
	return errors.Join(errs...)
}

// undoLoad deletes the messages added by the runs that match where (a condition on runs)
// and are still loading, and ends their loading state, in one transaction.
func undoLoad(ctx context.Context, conn *sql.Conn, where string, args ...any) error {
	return inTx(ctx, conn, func() error {
		runs := `SELECT run_id FROM runs WHERE loading AND ` + where
		if _, err := conn.ExecContext(ctx, `DELETE FROM messages WHERE run_id IN (`+runs+`)`, args...); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, `UPDATE runs SET loading = false WHERE run_id IN (`+runs+`)`, args...)
		return err
	})
}

// TodoPage calls each for the messages to ask that follow seq after in the todo table of
// conn, in input order, at most limit of them, until each returns false; it returns how
// many rows the page held. answered says the message has an answer in status_latest, which
// the new one will replace. Paging is the caller's: duckdb-go materialises a query's whole
// result before the first row, so one query over millions of IDs would hold them all.
func TodoPage(ctx context.Context, conn *sql.Conn, after int64, limit int, each func(seq int64, id string, answered bool) bool) (int, error) {
	rows, err := conn.QueryContext(ctx,
		"SELECT seq, message_id, answered FROM todo WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq int64
		var id string
		var answered bool
		if err := rows.Scan(&seq, &id, &answered); err != nil {
			return n, err
		}
		n++
		if !each(seq, id, answered) {
			return n, nil
		}
	}
	return n, rows.Err()
}

// freshTempTable closes app (when not nil), (re)creates the temp table with create and
// returns an Appender into it. A staging table is replaced rather than emptied because a
// temp table emptied with DELETE keeps the memory of every row it ever staged, which then
// spills to disk under a small memory limit (BENCHMARKS.md, the writer).
func freshTempTable(ctx context.Context, conn *sql.Conn, app *duckdb.Appender, table, create string) (*duckdb.Appender, error) {
	if app != nil {
		if err := app.Close(); err != nil {
			return nil, err
		}
	}
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return nil, err
	}
	var fresh *duckdb.Appender
	err := conn.Raw(func(dc any) error {
		var err error
		fresh, err = duckdb.NewAppender(dc.(driver.Conn), "temp", "main", table)
		return err
	})
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

// nullable maps "" to NULL so absent optional columns are NULL, not empty strings.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
