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
	stdinUsed := false
	for _, name := range cfg.Inputs {
		if name == "-" {
			if stdinUsed {
				closeAll(readers)
				return nil, errors.New(`"-" (stdin) given more than once`)
			}
			stdinUsed = true
		}
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

// load reads every input into a temporary table on conn, then, in the same transaction,
// records rejected rows, adds new IDs to messages and builds the temporary table todo of
// IDs to ask about. Either all of it is committed or none of it.
//
// Duplicates and campaign conflicts are settled in SQL rather than in Go: the Appender loses
// a whole batch on a duplicate key, and a set-based merge does not need every ID in memory.
func load(ctx context.Context, conn *sql.Conn, runID int64, readers []*idlist.Reader, cfg *Config) (loadStats, error) {
	var st loadStats
	if _, err := conn.ExecContext(ctx, `
		CREATE OR REPLACE TEMP TABLE input_rows (
			seq BIGINT, message_id VARCHAR, campaign VARCHAR, file VARCHAR, line BIGINT,
			recipient VARCHAR, sent_at VARCHAR, customer_message_id VARCHAR, messagelist_id VARCHAR)`); err != nil {
		return st, fmt.Errorf("create input table: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return st, fmt.Errorf("begin load: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()

	var rowsApp, rejApp *duckdb.Appender
	err := conn.Raw(func(dc any) error {
		var err error
		if rowsApp, err = duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "input_rows"); err != nil {
			return err
		}
		rejApp, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "rejected_rows")
		return err
	})
	if err != nil {
		return st, fmt.Errorf("open appender: %w", err)
	}
	appendersOpen := true
	closeAppenders := func() error {
		if !appendersOpen {
			return nil
		}
		appendersOpen = false
		return errors.Join(rowsApp.Close(), rejApp.Close())
	}
	defer closeAppenders()

	now := time.Now().UTC()
	var seq int64
	for _, r := range readers {
		for {
			if seq%4096 == 0 && ctx.Err() != nil {
				return st, context.Cause(ctx)
			}
			row, rej, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return st, err
			}
			seq++
			if rej != nil {
				st.Rejected++
				if err := rejApp.AppendRow(runID, now, rej.File, rej.Line, nullable(rej.Campaign),
					nullable(rej.ID), rej.Reason, nullable(rej.Raw)); err != nil {
					return st, fmt.Errorf("%s line %d: store rejected row: %w", rej.File, rej.Line, err)
				}
				continue
			}
			st.IDsRead++
			if err := rowsApp.AppendRow(seq, row.ID, row.Campaign, row.File, row.Line,
				nullable(row.Recipient), nullable(row.SentAt), nullable(row.CustomerMessageID),
				nullable(row.MessagelistID)); err != nil {
				return st, fmt.Errorf("%s line %d: stage row: %w", row.File, row.Line, err)
			}
		}
	}
	if err := closeAppenders(); err != nil {
		return st, fmt.Errorf("stage input rows: %w", err)
	}

	// The owner of an ID is the campaign it already has in messages, else the campaign of
	// its first row in this input. Rows naming another campaign are rejected with both names.
	conflicts, err := conn.ExecContext(ctx, `
		INSERT INTO rejected_rows (run_id, rejected_at, file, line, campaign, message_id, reason, raw)
		SELECT $1, $2, r.file, r.line, r.campaign, r.message_id,
		       'message ID already belongs to campaign ' || to_json(o.campaign) ||
		       ' (' || o.source || '); this row says ' || to_json(r.campaign),
		       NULL
		FROM input_rows r
		JOIN (
			SELECT message_id, campaign, 'loaded before' AS source FROM messages
			WHERE message_id IN (SELECT message_id FROM input_rows)
			UNION ALL
			SELECT f.message_id, f.campaign, f.file || ' line ' || f.line
			FROM (SELECT * FROM input_rows QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1) f
			WHERE f.message_id NOT IN (SELECT message_id FROM messages)
		) o USING (message_id)
		WHERE r.campaign <> o.campaign`, runID, now)
	if err != nil {
		return st, fmt.Errorf("check campaign conflicts: %w", err)
	}
	n, _ := conflicts.RowsAffected()
	st.Rejected += n

	if cfg.Strict && st.Rejected > 0 {
		// Keep the evidence (rejected_rows) but load no message: the caller fails the run.
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return st, fmt.Errorf("commit rejected rows: %w", err)
		}
		committed = true
		return st, &StrictError{Rejected: st.Rejected}
	}

	added, err := conn.ExecContext(ctx, `
		INSERT INTO messages (message_id, campaign, source_file, source_line, first_loaded_at, run_id,
		                      recipient, sent_at, customer_message_id, messagelist_id)
		SELECT message_id, campaign, file, line, $2, $1, recipient, sent_at, customer_message_id, messagelist_id
		FROM input_rows
		WHERE message_id NOT IN (SELECT message_id FROM messages)
		QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1`, runID, now)
	if err != nil {
		return st, fmt.Errorf("add messages: %w", err)
	}
	st.NewMessage, _ = added.RowsAffected()

	// The IDs to ask about, in input order: those of this input that belong to the campaign
	// the input names and, unless refreshing all, whose latest answer is not terminal.
	if _, err := conn.ExecContext(ctx, `
		CREATE OR REPLACE TEMP TABLE todo AS
		SELECT f.seq, f.message_id
		FROM (SELECT * FROM input_rows QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY seq) = 1) f
		JOIN messages m ON m.message_id = f.message_id AND m.campaign = f.campaign
		WHERE $1 OR f.message_id NOT IN (
			SELECT message_id FROM status_latest
			WHERE deliverystatus IN ('delivered', 'undeliverable', 'permanenterror'))
		ORDER BY f.seq`, cfg.Refresh == RefreshAll); err != nil {
		return st, fmt.Errorf("select messages to ask: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM todo").Scan(&st.ToAsk); err != nil {
		return st, fmt.Errorf("count messages to ask: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "DROP TABLE input_rows"); err != nil {
		return st, fmt.Errorf("drop input table: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return st, fmt.Errorf("commit loaded messages: %w", err)
	}
	committed = true
	return st, nil
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

// streamTodo sends the IDs of the todo table, in input order, until done or ctx ends.
func streamTodo(ctx context.Context, conn *sql.Conn, out chan<- string) error {
	rows, err := conn.QueryContext(ctx, "SELECT message_id FROM todo ORDER BY seq")
	if err != nil {
		return fmt.Errorf("read messages to ask: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("read messages to ask: %w", err)
		}
		select {
		case out <- id:
		case <-ctx.Done():
			return nil
		}
	}
	if err := rows.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read messages to ask: %w", err)
	}
	return nil
}

// sanitize makes s valid UTF-8: DuckDB's VARCHAR rejects anything else, and one bad value
// would cost the Appender its whole batch.
func sanitize(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
