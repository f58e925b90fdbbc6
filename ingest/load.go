package ingest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/ingest/idlist"
)

// loadStats counts what reading the inputs produced.
type loadStats struct {
	IDsRead    int64 // accepted rows, repeats included
	Rejected   int64 // rows in rejected_rows for this run (read and conflict rejects)
	NewMessage int64 // IDs added to messages
	ToAsk      int64 // IDs this run will request
}

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

// load reads the inputs in chunks of cfg.LoadChunk rows. Each chunk is staged in a temporary
// table and settled in one transaction: rejected rows recorded, new IDs added to messages,
// the IDs to ask about appended to the temporary table todo. Committing per chunk keeps the
// memory of a load bounded whatever the input's size; the whole load still reads as all or
// nothing, because the run is marked loading until the last chunk commits: message_status
// hides the messages of a loading run, a failed load deletes them before it returns, and
// the next fetch deletes those of a run that died while loading (recoverCrashed).
//
// Duplicates and campaign conflicts are settled in SQL rather than in Go: the Appender loses
// a whole batch on a duplicate key, and a set-based merge does not need every ID in memory.
func load(ctx context.Context, conn *sql.Conn, runID int64, readers []*idlist.Reader, cfg *Config) (st loadStats, err error) {
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE todo (seq BIGINT, message_id VARCHAR, answered BOOLEAN)`); err != nil {
		return st, fmt.Errorf("create load tables: %w", err)
	}
	l := &loader{conn: conn, runID: runID, cfg: cfg, now: time.Now().UTC()}
	defer func() {
		if err != nil {
			if uerr := l.undo(); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
	}()
	err = conn.Raw(func(dc any) error {
		var err error
		l.rejects, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "rejected_rows")
		return err
	})
	if err == nil {
		l.rows, err = freshTempTable(ctx, conn, nil, "input_rows", inputRowsTable)
	}
	if err != nil {
		return st, fmt.Errorf("open appender: %w", err)
	}
	defer l.close()

	var seq int64
	staged := 0
	for _, r := range readers {
		for {
			if seq%4096 == 0 && ctx.Err() != nil {
				return l.st, context.Cause(ctx)
			}
			row, rej, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return l.st, err
			}
			seq++
			if rej != nil {
				l.st.Rejected++
				if err := l.rejects.AppendRow(runID, l.now, rej.File, rej.Line, nullable(rej.Campaign),
					nullable(rej.ID), rej.Reason, nullable(rej.Raw)); err != nil {
					return l.st, fmt.Errorf("%s line %d: store rejected row: %w", rej.File, rej.Line, err)
				}
				continue
			}
			l.st.IDsRead++
			if err := l.rows.AppendRow(seq, row.ID, row.Campaign, row.File, row.Line,
				nullable(row.Recipient), nullable(row.SentAt), nullable(row.CustomerMessageID),
				nullable(row.MessagelistID)); err != nil {
				return l.st, fmt.Errorf("%s line %d: stage row: %w", row.File, row.Line, err)
			}
			if staged++; staged == cfg.LoadChunk {
				if err := l.settle(ctx); err != nil {
					return l.st, err
				}
				staged = 0
			}
		}
	}
	if err := l.settle(ctx); err != nil {
		return l.st, err
	}
	if cfg.Strict && l.st.Rejected > 0 {
		// Keep the evidence (rejected_rows) but load no message: the deferred undo takes
		// them back, and the caller fails the run.
		l.st.NewMessage, l.st.ToAsk = 0, 0
		return l.st, &StrictError{Rejected: l.st.Rejected}
	}
	if _, err := conn.ExecContext(ctx, "DROP TABLE input_rows"); err != nil {
		return l.st, fmt.Errorf("drop input table: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM todo").Scan(&l.st.ToAsk); err != nil {
		return l.st, fmt.Errorf("count messages to ask: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `UPDATE runs SET loading = false WHERE run_id = $1`, runID); err != nil {
		return l.st, fmt.Errorf("record loaded messages: %w", err)
	}
	return l.st, nil
}

// inputRowsTable stages one chunk of input rows.
const inputRowsTable = `CREATE OR REPLACE TEMP TABLE input_rows (
	seq BIGINT, message_id VARCHAR, campaign VARCHAR, file VARCHAR, line BIGINT,
	recipient VARCHAR, sent_at VARCHAR, customer_message_id VARCHAR, messagelist_id VARCHAR)`

// freshTempTable closes app (when not nil), (re)creates the temp table with create and
// returns an Appender into it. A staging table is replaced rather than emptied because
// DuckDB keeps the memory of every row a DELETE removed from a temp table: an emptied
// table grows with everything it ever staged and spills under a small memory limit
// (BENCHMARKS.md, the writer's staging table).
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

// loader is the state of one load between its chunks.
type loader struct {
	conn          *sql.Conn
	runID         int64
	cfg           *Config
	now           time.Time
	rows, rejects *duckdb.Appender
	closed        bool
	st            loadStats
}

func (l *loader) close() error {
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

// settle commits the staged chunk: its rejected rows, its campaign conflicts, its new
// messages and its IDs to ask, then replaces the staging table with an empty one.
func (l *loader) settle(ctx context.Context) (err error) {
	if err := errors.Join(l.rows.Flush(), l.rejects.Flush()); err != nil {
		return fmt.Errorf("stage input rows: %w", err)
	}
	if _, err := l.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin load: %w", err)
	}
	defer func() {
		if err != nil {
			l.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var conflicts, added int64
	// The owner of an ID is the campaign it already has in messages, else the campaign of
	// its first row in this input. Rows naming another campaign are rejected with both
	// names. An owner from an earlier chunk of this run is named by its file and line.
	if err := l.exec(ctx, &conflicts, "check campaign conflicts", `
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
		WHERE r.campaign <> o.campaign`, l.runID, l.now); err != nil {
		return err
	}
	if err := l.exec(ctx, &added, "add messages", `
		INSERT INTO messages (message_id, campaign, source_file, source_line, first_loaded_at, run_id,
		                      recipient, sent_at, customer_message_id, messagelist_id)
		SELECT message_id, campaign, file, line, $2, $1, recipient, sent_at, customer_message_id, messagelist_id
		FROM input_rows r
		WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = r.message_id)
		QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1`, l.runID, l.now); err != nil {
		return err
	}
	// The IDs to ask about, in input order: those of this input that belong to the campaign
	// the input names, were not already taken from an earlier chunk and, unless refreshing
	// all, whose latest answer is not terminal. The joins put the chunk on the build side,
	// not the whole of status_latest.
	if err := l.exec(ctx, nil, "select messages to ask", `
		INSERT INTO todo
		SELECT f.seq, f.message_id, s.message_id IS NOT NULL
		FROM (SELECT * FROM input_rows QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1) f
		JOIN messages m ON m.message_id = f.message_id AND m.campaign = f.campaign
		LEFT JOIN status_latest s ON s.message_id = f.message_id
		WHERE ($1 OR s.deliverystatus IS NULL OR s.deliverystatus NOT IN ('delivered', 'undeliverable', 'permanenterror'))
		  AND f.message_id NOT IN (SELECT message_id FROM todo)
		ORDER BY f.seq`, l.cfg.Refresh == RefreshAll); err != nil {
		return err
	}
	if _, err := l.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit loaded messages: %w", err)
	}
	l.st.Rejected += conflicts
	l.st.NewMessage += added
	rows, ferr := freshTempTable(ctx, l.conn, l.rows, "input_rows", inputRowsTable)
	if l.rows = rows; ferr != nil {
		return fmt.Errorf("empty input table: %w", ferr)
	}
	return nil
}

func (l *loader) exec(ctx context.Context, affected *int64, what, query string, args ...any) error {
	res, err := l.conn.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if affected != nil {
		*affected, _ = res.RowsAffected()
	}
	return nil
}

// undo takes back the messages the run added, keeping its rejected rows, and ends its
// loading state. It runs even when ctx is cancelled: an interrupted load must not leave
// half of its messages behind.
func (l *loader) undo() error {
	ctx := context.Background()
	if err := l.close(); err != nil {
		return fmt.Errorf("stage input rows: %w", err)
	}
	if err := undoLoad(ctx, l.conn, "run_id = $1", l.runID); err != nil {
		return fmt.Errorf("take back the messages of run %d: %w", l.runID, err)
	}
	return nil
}

// undoLoad deletes the messages added by the runs that match where (a condition on runs)
// and are still loading, and ends their loading state, in one transaction.
func undoLoad(ctx context.Context, conn *sql.Conn, where string, args ...any) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	runs := `SELECT run_id FROM runs WHERE loading AND ` + where
	if _, err := conn.ExecContext(ctx, `DELETE FROM messages WHERE run_id IN (`+runs+`)`, args...); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `UPDATE runs SET loading = false WHERE run_id IN (`+runs+`)`, args...); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// StrictError fails a --strict run that met rejected rows; nothing was requested.
type StrictError struct{ Rejected int64 }

func (e *StrictError) Error() string {
	return fmt.Sprintf("--strict: %d input rows rejected (see the rejected_rows table); no message was loaded or requested", e.Rejected)
}

// nullable maps "" to NULL so absent optional columns are NULL, not empty strings.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
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
		n, err := todoPageAfter(ctx, conn, last, func(seq int64, it todoItem) bool {
			last = seq
			select {
			case out <- it:
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
		if n < todoPage || ctx.Err() != nil {
			return nil
		}
	}
}

// todoPageAfter calls send for each of the next todoPage messages after seq, until send
// returns false, and says how many rows the page held.
func todoPageAfter(ctx context.Context, conn *sql.Conn, after int64, send func(int64, todoItem) bool) (int, error) {
	rows, err := conn.QueryContext(ctx,
		"SELECT seq, message_id, answered FROM todo WHERE seq > $1 ORDER BY seq LIMIT $2", after, todoPage)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq int64
		var it todoItem
		if err := rows.Scan(&seq, &it.id, &it.answered); err != nil {
			return n, err
		}
		n++
		if !send(seq, it) {
			return n, nil
		}
	}
	return n, rows.Err()
}

// sanitize makes s valid UTF-8: DuckDB's VARCHAR rejects anything else, and one bad value
// would cost the Appender its whole batch.
func sanitize(s string) string {
	if utf8.ValidString(s) { // the common case, checked eight bytes at a time
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
