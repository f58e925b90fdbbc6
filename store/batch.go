package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/smsbat"
)

// Answer is an answer to store: a status_checks row, which also replaces its message's row
// in status_latest.
type Answer struct {
	MessageID  string
	At         time.Time // checked_at
	HTTPStatus int
	Attempts   int
	Status     *smsbat.Status // DeliveryStatus "not_found" for a 404
	Body       []byte         // the raw body as received; nil or empty = NULL
	// Replaces says the message has an answer in status_latest already.
	Replaces bool
}

// Failure is a message still without an answer after its retries: a fetch_errors row.
type Failure struct {
	MessageID  string
	At         time.Time // failed_at
	Attempts   int
	Kind       string // rate_limited | server_error | client_error | decode | network | timeout
	HTTPStatus int    // 0 = none
	Err        string
	Body       string // the last response body; "" = NULL
}

// BatchCounts count the answers and failures of a batch.
type BatchCounts struct {
	Answered int64 // answers, not_found included
	NotFound int64
	Failed   int64
}

// RunTotals are a run's running totals that every batch's commit records with it.
type RunTotals struct {
	// Requested counts the messages the run has set out to ask so far: a run that asks in
	// several passes (a watch) counts a message once per pass. It only ever raises the
	// run's count, which its load already set, so 0 leaves that count alone.
	Requested            int64
	Retries, RateLimited int64
}

// Batch is a staging area for a run's answers, on its own connection: answers are appended
// to the connection's temp table batch_checks as they arrive, and moved with set-based SQL
// at Commit, so status_checks and status_latest are filled by DuckDB's vectorised
// INSERT ... SELECT, and a batch waits in DuckDB (which can spill it), not on the Go heap.
// Failures are few: they are kept in Go and appended inside the commit's transaction.
//
// A Batch is not safe for concurrent use, but two batches on two connections are: one can
// be staged while the other commits. Commits must still be made one at a time and in
// order, so that after a crash the file holds a prefix of a run's batches.
type Batch struct {
	db     *DB
	conn   *sql.Conn
	runID  int64
	checks *duckdb.Appender // into batch_checks
	errs   *duckdb.Appender // into fetch_errors, inside the commit's transaction

	// What is staged. replacing counts the answers to messages that have one in
	// status_latest already.
	staged    BatchCounts
	replacing int64
	failed    []Failure

	// The row being built (the Appender copies its values), and the run ID boxed once.
	row        []driver.Value
	runIDValue driver.Value
	// The JSON text of the row's two JSON columns, and the keys of a map being sorted.
	fallbacks, extended []byte
	keys                []string
}

// NewBatch pins a connection of db for a batch of the run's answers.
func (db *DB) NewBatch(ctx context.Context, runID int64) (*Batch, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db.Path, err)
	}
	b := &Batch{db: db, conn: conn, runID: runID, runIDValue: runID}
	if err := conn.Raw(func(dc any) error {
		var err error
		b.errs, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "fetch_errors")
		return err
	}); err != nil {
		b.Close()
		return nil, fmt.Errorf("open appender: %w", err)
	}
	if err := b.newStaging(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// newStaging replaces the staging table with an empty one, which frees the rows of the
// last batch (see freshTempTable).
func (b *Batch) newStaging(ctx context.Context) error {
	var err error
	// On failure checks is nil: the old Appender is closed either way.
	b.checks, err = freshTempTable(ctx, b.conn, b.checks, "batch_checks",
		`CREATE OR REPLACE TEMP TABLE batch_checks AS SELECT * FROM status_checks LIMIT 0`)
	if err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	return nil
}

// AddAnswer stages an answer. An error may come late (see Flush): an Appender reports
// some failures only when it flushes.
func (b *Batch) AddAnswer(a *Answer) error {
	b.staged.Answered++
	if a.Status.DeliveryStatus == smsbat.StatusNotFound {
		b.staged.NotFound++
	}
	if a.Replaces {
		b.replacing++
	}
	b.row = b.statusRow(a)
	return b.checks.AppendRow(b.row...)
}

// AddFailure stages a failure.
func (b *Batch) AddFailure(f Failure) {
	b.staged.Failed++
	b.failed = append(b.failed, f)
}

// Staged counts what is staged.
func (b *Batch) Staged() BatchCounts { return b.staged }

// Flush hands the staged answers to DuckDB, so that Commit finds them whole in the staging
// table. A failure means the batch cannot be stored.
func (b *Batch) Flush() error { return b.checks.Flush() }

// Commit stores the flushed batch and the run's counters in one transaction, so after a
// crash the database holds whole batches and counters that match them, and empties the
// batch for the next one (also when it fails). It returns what it stored: all that was
// staged once the transaction committed, nothing before.
func (b *Batch) Commit(ctx context.Context, totals RunTotals) (BatchCounts, error) {
	staged := b.staged
	defer b.reset()
	done := b.db.writing()
	err := inTx(ctx, b.conn, func() error { return b.commit(ctx, totals) })
	done()
	if err != nil {
		return BatchCounts{}, err
	}
	if err := b.newStaging(ctx); err != nil {
		return staged, fmt.Errorf("empty staging table: %w", err)
	}
	return staged, nil
}

func (b *Batch) commit(ctx context.Context, totals RunTotals) error {
	for i := range b.failed {
		f := &b.failed[i]
		if err := b.errs.AppendRow(b.runID, f.MessageID, f.At, int32(f.Attempts), f.Kind,
			nullInt(f.HTTPStatus), sanitize(f.Err), nullable(sanitize(f.Body))); err != nil {
			return fmt.Errorf("store fetch error of %q: %w", f.MessageID, err)
		}
	}
	if err := b.errs.Flush(); err != nil {
		return fmt.Errorf("store %d fetch errors: %w", len(b.failed), err)
	}
	if _, err := b.conn.ExecContext(ctx, `INSERT INTO status_checks SELECT * FROM batch_checks`); err != nil {
		return fmt.Errorf("store batch of %d answers: %w", b.staged.Answered, err)
	}
	// A batch of first answers only (a campaign's first fetch) skips the lookups in
	// status_latest: they scan it whole unless the batch's IDs fall outside its range, so
	// their cost grows with the file (BENCHMARKS.md, "The delete").
	// A batch holds at most one answer per message (a pass asks a message once, and a
	// watch commits between passes; batstat status --record cuts its batches so), so each
	// of its answers is its message's candidate.
	if err := mergeLatest(ctx, b.conn, `SELECT * EXCLUDE (raw) FROM batch_checks`, b.replacing > 0); err != nil {
		return fmt.Errorf("store batch of %d answers: %w", b.staged.Answered, err)
	}
	if _, err := b.conn.ExecContext(ctx, `
		UPDATE runs SET answered = answered + $2, not_found = not_found + $3, failed = failed + $4,
		       retries = $5, rate_limited = $6, requested = greatest(requested, $7)
		WHERE run_id = $1`, b.runID, b.staged.Answered, b.staged.NotFound, b.staged.Failed,
		totals.Retries, totals.RateLimited, totals.Requested); err != nil {
		return fmt.Errorf("update run counters: %w", err)
	}
	return nil
}

func (b *Batch) reset() {
	b.staged, b.replacing = BatchCounts{}, 0
	clear(b.failed)
	b.failed = b.failed[:0]
}

// Close releases the batch's appenders and connection.
func (b *Batch) Close() error {
	var errs []error
	for _, a := range []*duckdb.Appender{b.checks, b.errs} {
		if a != nil {
			errs = append(errs, a.Close())
		}
	}
	return errors.Join(append(errs, b.conn.Close())...)
}

// The values of status_checks.source.
const (
	sourcePoll    = "poll"
	sourceWebhook = "webhook"
)

// statusRow fills b.row (reused from one answer to the next: the Appender copies the
// values) with one status_checks row, in the table's column order.
func (b *Batch) statusRow(a *Answer) []driver.Value {
	s := a.Status
	var fallbacks, extended driver.Value // NULL when absent
	if s.Fallbacks != nil {
		b.fallbacks = fallbacksJSON(b.fallbacks[:0], s.Fallbacks)
		fallbacks = encodedJSON(b.fallbacks)
	}
	if s.ExtendedStatuses != nil {
		b.extended, b.keys = stringMapJSON(b.extended[:0], b.keys, s.ExtendedStatuses)
		extended = encodedJSON(b.extended)
	}
	return append(b.row[:0],
		a.MessageID, b.runIDValue, a.At, int32(a.HTTPStatus), s.DeliveryStatus,
		nullInt64(s.PartsCount), money(s.Cost), nullInt64(s.MessagelistID),
		money(s.Rate), money(s.RateAmount), nullable(s.RateCurrency),
		money(s.BillAmount), nullable(s.BillCurrency),
		fallbacks, extended,
		int32(a.Attempts), rawBody(a.Body), sourcePoll, nil,
	)
}

// encodedJSON is a JSON column's value already encoded: the Appender runs json.Marshal on
// every value of a JSON column, which for a slice or a map is reflection, sorting and
// escaping (a third of building a row); for an encodedJSON it is a scan and a copy.
type encodedJSON []byte

// MarshalJSON returns e itself: json.Marshal copies it before the next row reuses it.
func (e encodedJSON) MarshalJSON() ([]byte, error) { return e, nil }

// fallbacksJSON appends fs as json.Marshal encodes it, byte for byte: what the Appender
// was given for the column before, so the stored text is the same.
func fallbacksJSON(buf []byte, fs []smsbat.Fallback) []byte {
	for _, f := range fs {
		if !plainJSON(f.Type) || !plainJSON(f.Status) {
			return marshalJSON(buf, fs)
		}
	}
	buf = append(buf, '[')
	for i, f := range fs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"type":"`...)
		buf = append(buf, f.Type...)
		buf = append(buf, `","status":"`...)
		buf = append(buf, f.Status...)
		buf = append(buf, `"}`...)
	}
	return append(buf, ']')
}

// stringMapJSON appends m as json.Marshal encodes it, byte for byte (keys sorted), using
// keys to sort them; it returns both for reuse.
func stringMapJSON(buf []byte, keys []string, m map[string]string) ([]byte, []string) {
	keys = keys[:0]
	for k, v := range m {
		if !plainJSON(k) || !plainJSON(v) {
			return marshalJSON(buf, m), keys
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, k...)
		buf = append(buf, `":"`...)
		buf = append(buf, m[k]...)
		buf = append(buf, '"')
	}
	return append(buf, '}'), keys
}

// plainJSON says json.Marshal writes s between quotes as it is: printable ASCII without
// the characters it escapes (", \, and <, > and & for HTML).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// marshalJSON appends json.Marshal's encoding of v, which cannot fail for the strings,
// slices and maps of a status.
func marshalJSON(buf []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: encode %T: %v", v, err))
	}
	return append(buf, b...)
}

// rawBody is the raw column: the body as received, or NULL when empty. A valid UTF-8 body
// goes to the Appender as []byte, which it copies into DuckDB as it is, where a string
// would cost a copy per answer first; invalid UTF-8, which DuckDB refuses in a VARCHAR, is
// replaced as sanitize does.
func rawBody(b []byte) driver.Value {
	switch {
	case len(b) == 0:
		return nil
	case utf8.Valid(b):
		return b
	}
	return sanitize(string(b))
}

// sanitize makes s valid UTF-8: DuckDB's VARCHAR rejects anything else, and one bad value
// would cost the Appender its whole batch.
func sanitize(s string) string {
	if utf8.ValidString(s) { // the common case, checked eight bytes at a time
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
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
