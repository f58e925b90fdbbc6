package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/smsbat"
)

// Pushed is a status the provider pushed (its webhook): a status_checks row with source
// 'webhook' and no run, HTTP status or attempts.
type Pushed struct {
	MessageID string
	Status    string    // deliverystatus, as pushed
	At        time.Time // the event's timestamp: checked_at
	// ReceivedAt is when the receiver got the event: received_at.
	ReceivedAt time.Time
	Cost       *smsbat.Money // nil when the event had none
	Raw        []byte        // the event as received, valid UTF-8 JSON: the raw column
}

// SpoolPosition is where a webhook load stopped in a spool file: the byte offset of the
// first line not loaded yet, and the number of lines before it.
type SpoolPosition struct {
	Offset, Line int64
}

// SpoolPositions returns where the last webhook loads stopped in each spool file, by the
// file's absolute path.
func (db *DB) SpoolPositions(ctx context.Context) (map[string]SpoolPosition, error) {
	rows, err := db.QueryContext(ctx, `SELECT file, "offset", line FROM webhook_positions`)
	if err != nil {
		return nil, fmt.Errorf("read spool positions: %w", err)
	}
	defer rows.Close()
	pos := make(map[string]SpoolPosition)
	for rows.Next() {
		var f string
		var p SpoolPosition
		if err := rows.Scan(&f, &p.Offset, &p.Line); err != nil {
			return nil, fmt.Errorf("read spool positions: %w", err)
		}
		pos[f] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spool positions: %w", err)
	}
	return pos, nil
}

// PushCounts say what a webhook load stored.
type PushCounts struct {
	// Loaded counts the events added to status_checks.
	Loaded int64
	// Duplicates counts the events left out because an event of the same message, status
	// and timestamp was stored already, or came earlier in the same load: the provider
	// sends some twice, and a spool may be read again from its start.
	Duplicates int64
	// Unknown counts the events loaded for IDs that no campaign has loaded yet. They are
	// kept, and show in message_status once a fetch loads a list with their IDs.
	Unknown int64
}

// Add adds o's counts to c.
func (c *PushCounts) Add(o PushCounts) {
	c.Loaded += o.Loaded
	c.Duplicates += o.Duplicates
	c.Unknown += o.Unknown
}

// PushLoad stores pushed statuses in batches on its own connection: events are appended
// with the Appender to the temp table push_stage, and each Commit moves them with
// set-based SQL, in one transaction with the spool positions they came from, so after a
// crash the file holds whole batches and positions that match them. A PushLoad is not safe
// for concurrent use.
type PushLoad struct {
	db    *DB
	conn  *sql.Conn
	stage *duckdb.Appender

	staged int64
	// lo and hi bound the staged events' timestamps: the duplicate check reads only the
	// pushed rows of status_checks within them, which DuckDB finds by its row groups'
	// min/max (rows are stored roughly in time order) instead of reading the whole table.
	lo, hi    time.Time
	positions map[string]SpoolPosition

	row []driver.Value
}

// pushStageTable stages one batch of pushed events.
// A row's rowid numbers the events in the order they were staged (received): the table is
// made anew for each batch and never deleted from, so its rowids run 0, 1, 2, ... The
// statements of a commit pick rows by their numbers alone, so that no aggregate, sort or
// copy of the batch carries its raw bodies along; and the Appender has a column less to
// fill.
const pushStageTable = `CREATE OR REPLACE TEMP TABLE push_stage (
	message_id VARCHAR, checked_at TIMESTAMPTZ, deliverystatus VARCHAR, cost DECIMAL(18,6),
	raw VARCHAR, received_at TIMESTAMPTZ)`

// pushRows selects push_stage's rows as status_checks rows.
const pushRows = `SELECT s.message_id, NULL::BIGINT AS run_id, s.checked_at, NULL::INTEGER AS http_status,
	s.deliverystatus, NULL::INTEGER AS partscount, s.cost, NULL::BIGINT AS messagelist_id,
	NULL::DECIMAL(18,6) AS rate, NULL::DECIMAL(18,6) AS rate_amount, NULL::VARCHAR AS rate_currency,
	NULL::DECIMAL(18,6) AS bill_amount, NULL::VARCHAR AS bill_currency,
	NULL::JSON AS fallbacks, NULL::JSON AS extended_statuses, NULL::INTEGER AS attempts,
	s.raw, '` + sourceWebhook + `' AS source, s.received_at
	FROM push_stage s`

// StartPushLoad pins a connection of db for a webhook load.
func (db *DB) StartPushLoad(ctx context.Context) (*PushLoad, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db.Path, err)
	}
	p := &PushLoad{db: db, conn: conn, positions: make(map[string]SpoolPosition), row: make([]driver.Value, 6)}
	if p.stage, err = freshTempTable(ctx, conn, nil, "push_stage", pushStageTable); err != nil {
		conn.Close()
		return nil, fmt.Errorf("create staging table: %w", err)
	}
	return p, nil
}

// Add stages a pushed status. An error may come late (see Commit): an Appender reports
// some failures only when it flushes.
func (p *PushLoad) Add(e *Pushed) error {
	if p.staged == 0 || e.At.Before(p.lo) {
		p.lo = e.At
	}
	if p.staged == 0 || e.At.After(p.hi) {
		p.hi = e.At
	}
	p.staged++
	p.row[0], p.row[1], p.row[2], p.row[3], p.row[4], p.row[5] =
		e.MessageID, e.At, e.Status, money(e.Cost), rawBody(e.Raw), e.ReceivedAt
	return p.stage.AppendRow(p.row...)
}

// SetPosition records where reading file (an absolute path) stands: the next Commit
// stores it with the events staged from it.
func (p *PushLoad) SetPosition(file string, pos SpoolPosition) { p.positions[file] = pos }

// Staged returns how many events wait for the next Commit.
func (p *PushLoad) Staged() int64 { return p.staged }

// Commit stores the staged events and the positions set since the last Commit in one
// transaction: the events not stored already go to status_checks, and each message's
// latest answer is brought up to date (a terminal status is never replaced by a later
// non-terminal one). It returns what it stored, and empties the batch (also when it
// fails).
func (p *PushLoad) Commit(ctx context.Context) (PushCounts, error) {
	defer func() {
		p.staged = 0
		clear(p.positions)
	}()
	if p.staged == 0 && len(p.positions) == 0 {
		return PushCounts{}, nil
	}
	if err := p.stage.Flush(); err != nil {
		return PushCounts{}, fmt.Errorf("stage pushed statuses: %w", err)
	}
	var c PushCounts
	done := p.db.writing()
	err := inTx(ctx, p.conn, func() error { return p.commit(ctx, &c) })
	done()
	// A new staging table either way: a failed batch must not come back with the next.
	stage, serr := freshTempTable(context.WithoutCancel(ctx), p.conn, p.stage, "push_stage", pushStageTable)
	p.stage = stage
	if err != nil {
		return PushCounts{}, err
	}
	if serr != nil {
		return c, fmt.Errorf("empty staging table: %w", serr)
	}
	return c, nil
}

func (p *PushLoad) commit(ctx context.Context, c *PushCounts) error {
	if p.staged > 0 {
		// push_keep: the events to store, by number: of the copies of an event (message,
		// status, timestamp) the first staged, unless a copy is stored already. The
		// bounds are literals, not parameters, so that DuckDB skips the row groups of
		// status_checks outside them.
		lo, hi := p.lo.UTC().Format(tsLiteral), p.hi.Add(time.Microsecond).UTC().Format(tsLiteral)
		if err := p.exec(ctx, nil, "find new pushed statuses", `
			CREATE OR REPLACE TEMP TABLE push_keep AS
			SELECT min(s.rowid) AS seq FROM push_stage s
			WHERE NOT EXISTS (
				SELECT 1 FROM status_checks c
				WHERE c.source = '`+sourceWebhook+`'
				  AND c.checked_at >= '`+lo+`'::TIMESTAMPTZ AND c.checked_at <= '`+hi+`'::TIMESTAMPTZ
				  AND c.message_id = s.message_id AND c.checked_at = s.checked_at
				  AND c.deliverystatus = s.deliverystatus)
			GROUP BY message_id, checked_at, deliverystatus`); err != nil {
			return err
		}
		if err := p.conn.QueryRowContext(ctx, `SELECT count(*) FROM push_keep`).Scan(&c.Loaded); err != nil {
			return fmt.Errorf("count new pushed statuses: %w", err)
		}
		c.Duplicates = p.staged - c.Loaded
		if c.Loaded > 0 {
			var known int64
			// The join builds its hash table from the batch, not from messages.
			if err := p.conn.QueryRowContext(ctx, `
				SELECT count(*) FROM messages m
				JOIN (SELECT message_id FROM push_stage WHERE rowid IN (SELECT seq FROM push_keep)) n
				  ON n.message_id = m.message_id`).Scan(&known); err != nil {
				return fmt.Errorf("count pushed statuses of known messages: %w", err)
			}
			c.Unknown = c.Loaded - known
			if err := p.exec(ctx, nil, "store pushed statuses", `INSERT INTO status_checks `+pushRows+`
				WHERE s.rowid IN (SELECT seq FROM push_keep)`); err != nil {
				return err
			}
			// Each message's candidate is the first of all its staged events by the rule,
			// copies of stored events included: one of those cannot come before the row
			// status_latest holds already.
			if err := mergeLatest(ctx, p.conn, `SELECT * EXCLUDE (raw) FROM (`+pushRows+`
				WHERE s.rowid IN (SELECT arg_max(rowid, `+latestKey+`) FROM push_stage GROUP BY message_id))`, true); err != nil {
				return err
			}
		}
		if err := p.exec(ctx, nil, "drop batch", `DROP TABLE push_keep`); err != nil {
			return err
		}
	}
	if len(p.positions) > 0 {
		files := make([]string, 0, len(p.positions))
		offsets := make([]int64, 0, len(p.positions))
		lines := make([]int64, 0, len(p.positions))
		for f, pos := range maps.All(p.positions) {
			files, offsets, lines = append(files, f), append(offsets, pos.Offset), append(lines, pos.Line)
		}
		if err := p.exec(ctx, nil, "record spool positions", `
			INSERT OR REPLACE INTO webhook_positions
			SELECT unnest($1::VARCHAR[]), unnest($2::BIGINT[]), unnest($3::BIGINT[]), now()`,
			files, offsets, lines); err != nil {
			return err
		}
	}
	return nil
}

// tsLiteral writes a time as a TIMESTAMPTZ literal, cut to the microsecond DuckDB keeps;
// the upper bound is raised by a microsecond first, so the bounds are only ever widened.
const tsLiteral = "2006-01-02 15:04:05.999999Z07:00"

func (p *PushLoad) exec(ctx context.Context, affected *int64, what, query string, args ...any) error {
	return execCounted(ctx, p.conn, affected, what, query, args...)
}

// Close releases the load's Appender and connection; staged events not committed are
// dropped.
func (p *PushLoad) Close() error {
	var errs []error
	if p.stage != nil { // nil when a Commit could not make a new staging table
		errs = append(errs, p.stage.Close())
	}
	if _, err := p.conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS push_stage`); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, p.conn.Close())...)
}
