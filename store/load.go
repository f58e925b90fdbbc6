package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// Kind names the reason without its details, for LoadCounts.RejectedBy; "" counts as
	// "other". It is not stored.
	Kind string
	Raw  string // "" = NULL
}

// The kinds of rejection a load finds itself (LoadCounts.RejectedBy), besides those of the
// rows handed to Reject.
const (
	// KindDuplicate is a row whose ID an earlier row of the run's input named: its reason
	// is "duplicate of FILE:LINE", the first occurrence, which is the one loaded.
	KindDuplicate = "duplicate"
	// KindAlreadyInCampaign is the first row of the input naming an ID that an earlier run
	// loaded under another campaign, which the ID keeps: its reason is
	// "already in campaign NAME".
	KindAlreadyInCampaign = "already_in_campaign"
	// KindOther counts rejections handed to Reject without a Kind.
	KindOther = "other"
)

// LoadCounts say what a load did so far.
type LoadCounts struct {
	IDsRead  int64 // messages staged, repeats included
	Rejected int64 // rejected_rows rows: those handed to Reject, duplicates and campaign conflicts
	// RejectedBy counts Rejected by kind (Rejection.Kind, KindDuplicate,
	// KindAlreadyInCampaign); kinds without rows are absent.
	RejectedBy  map[string]int64
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
// Repeated IDs are settled in SQL rather than in Go: the Appender loses a whole batch on a
// duplicate key, and a set-based merge does not need every ID in memory. The first row of
// the run's input that names an ID (its first occurrence, whatever chunk it falls in) is
// the one that counts, and the connection's temp table seen keeps where each was; every
// later row naming the ID is rejected as "duplicate of FILE:LINE", whatever campaign it
// names. A first occurrence naming another campaign than the one an earlier run loaded
// the ID under is rejected as "already in campaign NAME": an ID keeps its first campaign.
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
	// files are the input names staged so far; seen refers to them by number (1-based, a
	// name being a few dozen bytes against 4 for its number in a row per ID).
	files      []string
	fileNo     int32 // of the last row staged
	rejectedBy map[string]int64
	chunkRows  int64 // rows staged since the last Settle
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
	l := &Load{db: db, conn: conn, runID: opts.RunID, at: opts.At, refreshAll: opts.RefreshAll, rejectedBy: map[string]int64{}}
	for _, create := range []string{
		`CREATE OR REPLACE TEMP TABLE todo (seq BIGINT, message_id VARCHAR, answered BOOLEAN)`,
		seenTable,
	} {
		if _, err := conn.ExecContext(ctx, create); err != nil {
			return nil, errors.Join(fmt.Errorf("create load tables: %w", err), l.Undo())
		}
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
// of repeated rows, the first wins. file_no numbers file (see Load.files).
const inputRowsTable = `CREATE OR REPLACE TEMP TABLE input_rows (
	seq BIGINT, message_id VARCHAR, campaign VARCHAR, file VARCHAR, file_no INTEGER, line BIGINT,
	recipient VARCHAR, sent_at VARCHAR, customer_message_id VARCHAR, messagelist_id VARCHAR)`

// seenTable holds the first occurrence of every ID of the run's input so far: its file (by
// number) and line, for the reason of the rows that repeat it. It has a row per ID of the
// input, so it holds no more than that.
const seenTable = `CREATE OR REPLACE TEMP TABLE seen (message_id VARCHAR, file_no INTEGER, line BIGINT)`

// Stage adds an accepted input row to the chunk.
func (l *Load) Stage(m *Message) error {
	l.seq++
	l.counts.IDsRead++
	l.chunkRows++
	if len(l.files) == 0 || l.files[l.fileNo-1] != m.SourceFile {
		l.fileNo = int32(l.fileNumber(m.SourceFile))
	}
	return l.rows.AppendRow(l.seq, m.MessageID, m.Campaign, m.SourceFile, l.fileNo, m.SourceLine,
		nullable(m.Recipient), nullable(m.SentAt), nullable(m.CustomerMessageID), nullable(m.MessagelistID))
}

// fileNumber returns the number of file, giving it the next one when it is new.
func (l *Load) fileNumber(file string) int {
	if i := slices.Index(l.files, file); i >= 0 {
		return i + 1
	}
	l.files = append(l.files, file)
	return len(l.files)
}

// Reject records an input row that cannot be loaded, with the chunk.
func (l *Load) Reject(r *Rejection) error {
	// The Appender writes to rejected_rows by itself once it holds enough rows.
	defer l.db.writing()()
	l.seq++
	l.counts.Rejected++
	kind := r.Kind
	if kind == "" {
		kind = KindOther
	}
	l.rejectedBy[kind]++
	return l.rejects.AppendRow(l.runID, l.at, r.File, r.Line, nullable(r.Campaign),
		nullable(r.MessageID), r.Reason, nullable(r.Raw))
}

// Counts returns what the load did so far.
func (l *Load) Counts() LoadCounts {
	c := l.counts
	c.RejectedBy = maps.Clone(l.rejectedBy)
	return c
}

// Settle commits the staged chunk: its rejected rows, its repeated IDs and campaign
// conflicts, its new messages and its IDs to ask, then replaces the staging table with an
// empty one.
func (l *Load) Settle(ctx context.Context) error {
	var duplicates, conflicts, added int64
	done := l.db.writing()
	err := errors.Join(l.rows.Flush(), l.rejects.Flush())
	if err != nil {
		err = fmt.Errorf("stage input rows: %w", err)
	} else {
		err = inTx(ctx, l.conn, func() error { return l.settle(ctx, &duplicates, &conflicts, &added) })
	}
	done()
	if err != nil {
		return err
	}
	l.counts.Rejected += duplicates + conflicts
	for kind, n := range map[string]int64{KindDuplicate: duplicates, KindAlreadyInCampaign: conflicts} {
		if n > 0 {
			l.rejectedBy[kind] += n
		}
	}
	l.counts.NewMessages += added
	l.chunkRows = 0
	rows, err := freshTempTable(ctx, l.conn, l.rows, "input_rows", inputRowsTable)
	if l.rows = rows; err != nil {
		return fmt.Errorf("empty input table: %w", err)
	}
	return nil
}

func (l *Load) settle(ctx context.Context, duplicates, conflicts, added *int64) error {
	// firsts: the rows of the chunk that are the first occurrence of their ID in the run
	// (its least seq in the chunk, and an ID that no earlier chunk named: those join seen),
	// each with the campaign that messages holds its ID under, if any. That is the chunk's
	// one lookup in messages; the statements after it read firsts alone, but for the
	// lookup of answers in status_latest. The chunk's first occurrences are found by an
	// aggregate of (message_id, seq), not a window over whole rows, which needs several
	// times the memory. Each join below has the chunk on its build side, never messages,
	// seen or status_latest, which grow with the file.
	if err := l.exec(ctx, nil, "find first occurrences", `
		CREATE OR REPLACE TEMP TABLE firsts AS
		SELECT r.*, m.campaign AS known_campaign
		FROM (SELECT min(seq) AS seq, message_id FROM input_rows GROUP BY message_id) k
		LEFT JOIN seen s ON s.message_id = k.message_id
		JOIN input_rows r ON r.seq = k.seq
		LEFT JOIN messages m ON m.message_id = k.message_id
		WHERE s.message_id IS NULL`); err != nil {
		return err
	}
	var firsts int64
	if err := l.exec(ctx, &firsts, "note first occurrences", `
		INSERT INTO seen SELECT message_id, file_no, line FROM firsts`); err != nil {
		return err
	}
	// Every other row of the chunk repeats an ID whose first occurrence is in seen; most
	// chunks have none, and need not look.
	if firsts < l.chunkRows {
		if err := l.exec(ctx, duplicates, "reject repeated IDs", `
		INSERT INTO rejected_rows (run_id, rejected_at, file, line, campaign, message_id, reason, raw)
		SELECT $1, $2, r.file, r.line, r.campaign, r.message_id,
		       'duplicate of ' || list_extract($3::VARCHAR[], s.file_no) || ':' || s.line, NULL
		FROM input_rows r
		JOIN seen s ON s.message_id = r.message_id
		WHERE NOT EXISTS (SELECT 1 FROM firsts f WHERE f.seq = r.seq)`, l.runID, l.at, l.files); err != nil {
			return err
		}
	}
	// A first occurrence of an ID that messages holds under another campaign: an earlier
	// run loaded it (this run adds only IDs of first occurrences, which come once).
	if err := l.exec(ctx, conflicts, "reject campaign conflicts", `
		INSERT INTO rejected_rows (run_id, rejected_at, file, line, campaign, message_id, reason, raw)
		SELECT $1, $2, file, line, campaign, message_id, 'already in campaign ' || known_campaign, NULL
		FROM firsts
		WHERE known_campaign <> campaign`, l.runID, l.at); err != nil {
		return err
	}
	if err := l.exec(ctx, added, "add messages", `
		INSERT INTO messages (message_id, campaign, source_file, source_line, first_loaded_at, run_id,
		                      recipient, sent_at, customer_message_id, messagelist_id)
		SELECT message_id, campaign, file, line, $2, $1, recipient, sent_at, customer_message_id, messagelist_id
		FROM firsts
		WHERE known_campaign IS NULL`, l.runID, l.at); err != nil {
		return err
	}
	// The IDs to ask about, in input order: the first occurrences that belong to the
	// campaign they name (new, or loaded before under it) and, unless refreshing all, whose
	// latest answer is not terminal. An ID new to messages may have an answer already: a
	// pushed status that came before its list.
	return l.exec(ctx, nil, "select messages to ask", `
		INSERT INTO todo
		SELECT f.seq, f.message_id, s.message_id IS NOT NULL
		FROM firsts f
		LEFT JOIN status_latest s ON s.message_id = f.message_id
		WHERE (f.known_campaign IS NULL OR f.known_campaign = f.campaign)
		  AND ($1 OR NOT is_terminal(s.deliverystatus))
		ORDER BY f.seq`, l.refreshAll)
}

func (l *Load) exec(ctx context.Context, affected *int64, what, query string, args ...any) error {
	return execCounted(ctx, l.conn, affected, what, query, args...)
}

// execCounted runs query on e, naming what failed as what, and stores the rows it affected
// in affected when that is not nil.
func execCounted(ctx context.Context, e execer, affected *int64, what, query string, args ...any) error {
	res, err := e.ExecContext(ctx, query, args...)
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
	// The load's tables go with it: the connection serves the rest of the run, and seen
	// holds a row per ID of the input.
	if _, err := l.conn.ExecContext(ctx, "DROP TABLE input_rows; DROP TABLE IF EXISTS firsts; DROP TABLE seen"); err != nil {
		return l.Counts(), fmt.Errorf("drop load tables: %w", err)
	}
	if err := l.conn.QueryRowContext(ctx, "SELECT count(*) FROM todo").Scan(&l.counts.ToAsk); err != nil {
		return l.Counts(), fmt.Errorf("count messages to ask: %w", err)
	}
	if _, err := l.conn.ExecContext(ctx,
		`UPDATE runs SET loading = false, ids_read = $2, rejected = $3, requested = $4 WHERE run_id = $1`,
		l.runID, l.counts.IDsRead, l.counts.Rejected, l.counts.ToAsk); err != nil {
		return l.Counts(), fmt.Errorf("record loaded messages: %w", err)
	}
	return l.Counts(), nil
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
// many rows the page held, 0 only when no message follows after. answered says the
// message has an answer in status_latest, which the new one will replace. Paging is the
// caller's: duckdb-go materialises a query's whole result before the first row, so one
// query over millions of IDs would hold them all.
func TodoPage(ctx context.Context, conn *sql.Conn, after int64, limit int, each func(seq int64, id string, answered bool) bool) (int, error) {
	return seqPage(ctx, conn, "todo", after, limit, func(lo, hi int64) (int, error) {
		rows, err := conn.QueryContext(ctx,
			"SELECT seq, message_id, answered FROM todo WHERE seq > $1 AND seq <= $2 ORDER BY seq", lo, hi)
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
	})
}

// seqPage reads, with window, a page of the rows of table (whose seq is unique) that
// follow seq after: those of the window (after, after+limit], at most limit rows, or when
// it has none, of the window that begins at the next seq. It returns what window returned,
// or 0 when no row follows after.
//
// A page is a window rather than ORDER BY seq LIMIT limit over the rest of the table
// because DuckDB sorts that rest whole unless limit is a small part of it (its top-N
// is for small limits): for a todo table of 1M IDs, a page held up to 55 MiB of sort and
// sorted the run's remaining IDs again, 100 times over. A window is sorted alone.
func seqPage(ctx context.Context, conn *sql.Conn, table string, after int64, limit int, window func(lo, hi int64) (int, error)) (int, error) {
	for {
		n, err := window(after, after+int64(limit))
		if n > 0 || err != nil {
			return n, err
		}
		var next sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT min(seq) FROM `+table+` WHERE seq > $1`, after).Scan(&next); err != nil {
			return 0, err
		}
		if !next.Valid {
			return 0, nil
		}
		after = next.Int64 - 1
	}
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
