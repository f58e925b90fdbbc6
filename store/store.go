// Package store owns the batstat DuckDB file: opening it read-write or read-only, its
// schema (schema.sql) and every statement that writes to it, and turning DuckDB's low-level
// failures (a file locked by another process, a file that is not a database) into errors a
// user can act on. Reading is open to all: reports and ad-hoc SQL query the file directly.
//
// The writes are shaped by what a fetch does: a run is started, recovered or finished
// (StartRun, RecoverCrashed, FinishRun); its inputs are loaded in chunks (Load) and read
// back as the messages to ask (TodoPage); its answers are committed in batches (Batch).
// Stateful work (temp tables, transactions, the Appender) is done on a pinned *sql.Conn.
//
// While a writer holds the file, no other process may open it, not even to read; so the
// writer publishes snapshots beside it (DB.Snapshot, SnapshotPath), which readers open
// instead (OpenReader), and an open can wait for a file another process holds (Wait).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Options tune how a database file is opened.
type Options struct {
	// ReadOnly opens the file without write access and without applying the schema, except
	// to bring a file of an older schema up to date first (see Open). The file must exist.
	ReadOnly bool
	// Threads and MemoryLimit cap DuckDB's resources (0 / "" keep DuckDB's defaults: all
	// cores and 80% of RAM), for cron jobs on shared hosts. MemoryLimit is a size with a
	// unit (see CheckMemoryLimit).
	Threads     int
	MemoryLimit string
}

// DB is an open batstat database. It is safe for concurrent use like *sql.DB. Queries may
// use the embedded *sql.DB; writes go through the methods and types of this package, which
// pin a connection (DB.Conn) for stateful work: temp tables, transactions, the Appender.
type DB struct {
	*sql.DB
	Path      string
	connector *duckdb.Connector
	// tempKey names the temp directory of a read-only open (see acquireTempDir); "" for a
	// read-write open, which keeps DuckDB's default beside the file.
	tempKey string
	// scratchDir is the directory of a scratch copy (see OpenScratch), removed by Close.
	scratchDir string

	// FromSnapshot says what OpenReader opened when the database file itself was held by
	// another process: the snapshot at Path. It is nil when Path is the database.
	FromSnapshot *SnapshotInfo

	// writeMu keeps Snapshot apart from every write to the file: each method of this
	// package that writes holds it for reading while it writes (see writing), and
	// Snapshot holds it exclusively while it checkpoints and copies the file. A new
	// write method must take it too.
	writeMu sync.RWMutex
	// changes counts the writes done under writeMu; published is its value at the last
	// snapshot, so that a snapshot of an unchanged file can be skipped.
	changes, published atomic.Int64
	// snapMu makes snapshots one at a time: they share one temp file. It also guards fd,
	// the descriptor snapshots copy the file from (see file).
	snapMu sync.Mutex
	fd     *os.File
}

// writing holds off snapshots until the returned function is called, once the write it
// guards is over (committed or rolled back).
func (db *DB) writing() (done func()) {
	db.writeMu.RLock()
	return func() {
		db.changes.Add(1)
		db.writeMu.RUnlock()
	}
}

// LockedError reports that another process holds the database file: a temporary
// failure, worth trying again later.
type LockedError struct {
	Path string
	PID  string // the holder's PID when DuckDB names it
	// Waited is how long the open waited for the file before it gave up (see Wait); 0
	// when it did not wait.
	Waited time.Duration
}

func (e *LockedError) Error() string {
	if e.Waited > 0 {
		return fmt.Sprintf("database %s is in use by %s: still held after waiting %s; try again later",
			e.Path, e.holder(), FormatWait(e.Waited))
	}
	return fmt.Sprintf("database %s is in use by %s; wait for it to finish or use another --db", e.Path, e.holder())
}

func (e *LockedError) holder() string {
	if e.PID != "" {
		return "another process (PID " + e.PID + ")"
	}
	return "another process"
}

var pidRE = regexp.MustCompile(`PID (\d+)`)

// Open opens (creating it if needed, unless read-only) the database at path. A read-write
// open brings the file's schema up to date, and removes the temp file of a snapshot that a
// writer killed while publishing it left behind. So does a read-only open of a file batstat made
// with an older schema, which the reports could not read: it opens the file read-write for
// that first, and fails with an error that says how to upgrade when another process holds
// the file. A DuckDB file that batstat did not make is opened as it is.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	db, err := open(ctx, path, opts)
	if err != nil || !opts.ReadOnly {
		return db, err
	}
	version, ours, err := schemaVersion(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: read its schema version: %w", path, err)
	}
	if !ours || version >= SchemaVersion {
		return db, nil
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	rwOpts := opts
	rwOpts.ReadOnly = false
	rw, err := open(ctx, path, rwOpts)
	if err != nil {
		return nil, &OutdatedError{Path: path, Version: version, Err: err}
	}
	if err := rw.Close(); err != nil {
		return nil, fmt.Errorf("update schema of %s: %w", path, err)
	}
	return open(ctx, path, opts)
}

// OutdatedError reports a file with an older schema that a read-only open could not bring
// up to date, because the file could not be opened read-write (Err says why: most often
// another process holds it, see IsLocked).
type OutdatedError struct {
	Path    string
	Version int // the file's schema version
	Err     error
}

func (e *OutdatedError) Error() string {
	why := "opening it read-write failed: " + e.Err.Error()
	var le *LockedError
	if errors.As(e.Err, &le) {
		why = le.holder() + " has it open: run the command again once that process has closed the file"
	}
	return fmt.Sprintf("database %s has schema version %d, older than this batstat's %d; batstat "+
		"brings it up to date in place when it can open it read-write, but %s", e.Path, e.Version, SchemaVersion, why)
}

func (e *OutdatedError) Unwrap() error { return e.Err }

// memoryLimitRE is the memory_limit syntax batstat passes on to DuckDB: a positive size
// with a unit, decimal (KB = 1000 bytes) or binary (KiB = 1024), in any case, as DuckDB
// reads it. DuckDB also takes other spellings, but a typo must not reach it: it reports
// every value it cannot read as an invalid option of the database, naming no flag.
var memoryLimitRE = regexp.MustCompile(`(?i)^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`)

// CheckMemoryLimit reports whether s is a memory limit Open accepts: "" (DuckDB's default)
// or a size with a unit such as 96MB, 2GB, 1.5 GiB.
func CheckMemoryLimit(s string) error {
	if s == "" {
		return nil
	}
	m := memoryLimitRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("want a size with a unit, such as 512MB, 2GB or 1.5GiB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
	}
	if strings.Trim(m[1], "0.") == "" {
		return fmt.Errorf("must be more than 0")
	}
	return nil
}

// open opens the file and, unless read-only, migrates its schema.
func open(ctx context.Context, path string, opts Options) (*DB, error) {
	if err := CheckMemoryLimit(opts.MemoryLimit); err != nil {
		return nil, fmt.Errorf("open database %s: memory limit %q: %w", path, opts.MemoryLimit, err)
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("open database %s: threads %d: must not be negative", path, opts.Threads)
	}
	dsn := path
	var params []string
	var tempKey string
	if opts.ReadOnly {
		params = append(params, "access_mode=READ_ONLY")
		dir, key, err := acquireTempDir(path)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		tempKey = key
		params = append(params, "temp_directory="+url.QueryEscape(dir))
	}
	if opts.Threads > 0 {
		params = append(params, fmt.Sprintf("threads=%d", opts.Threads))
	}
	if opts.MemoryLimit != "" {
		params = append(params, "memory_limit="+opts.MemoryLimit)
	}
	if len(params) > 0 {
		dsn += "?" + strings.Join(params, "&")
	}
	connector, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		if tempKey != "" {
			releaseTempDir(tempKey)
		}
		return nil, openError(path, err)
	}
	db := &DB{DB: sql.OpenDB(connector), Path: path, connector: connector, tempKey: tempKey}
	// Surface lock and format errors now rather than on the first query.
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	if !opts.ReadOnly {
		if err := db.migrate(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("update schema of %s: %w", path, err)
		}
		// Holding the file read-write, this process is the only one that writes snapshots
		// of it: a temp file is what a killed writer left.
		if err := removeIfExists(snapshotTempPath(path)); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return migrate(ctx, conn)
}

// Close closes the database, checkpointing the WAL into the file.
func (db *DB) Close() error {
	err := db.DB.Close()
	if cerr := db.connector.Close(); err == nil {
		err = cerr
	}
	if db.tempKey != "" {
		releaseTempDir(db.tempKey)
		db.tempKey = ""
	}
	// Only now that DuckDB has let go of the file (see file).
	db.snapMu.Lock()
	if db.fd != nil {
		db.fd.Close()
		db.fd = nil
	}
	db.snapMu.Unlock()
	if db.scratchDir != "" {
		if rerr := os.RemoveAll(db.scratchDir); err == nil && rerr != nil {
			err = fmt.Errorf("remove scratch copy: %w", rerr)
		}
		db.scratchDir = ""
	}
	return err
}

// Meta returns the value of key in batstat_meta; ok is false when the key is absent.
func (db *DB) Meta(ctx context.Context, key string) (value string, ok bool, err error) {
	return getMeta(ctx, db, key)
}

// SetMeta sets key to value in batstat_meta, replacing any value it had.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	defer db.writing()()
	return setMeta(ctx, db, key, value)
}

// querier and execer are what *sql.DB and *sql.Conn share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func getMeta(ctx context.Context, q querier, key string) (string, bool, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM batstat_meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s from batstat_meta: %w", key, err)
	}
	return v, true, nil
}

func setMeta(ctx context.Context, e execer, key, value string) error {
	if _, err := e.ExecContext(ctx, `INSERT OR REPLACE INTO batstat_meta VALUES ($1, $2)`, key, value); err != nil {
		return fmt.Errorf("record %s in batstat_meta: %w", key, err)
	}
	return nil
}

// inTx runs fn inside a transaction on conn: it commits when fn returns nil and rolls back
// otherwise. The rollback does not use ctx's cancellation, so a cancelled run still ends
// its transaction (DuckDB would keep it open on the connection, and the next statement
// would run inside it).
func inTx(ctx context.Context, conn *sql.Conn, fn func() error) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// openError names what went wrong opening path. DuckDB reports a held lock and a foreign
// file only as IO errors with a message, so the message is read here, in this one place.
func openError(path string, err error) error {
	msg := err.Error()
	var de *duckdb.Error
	if errors.As(err, &de) {
		msg = de.Msg
	}
	switch {
	case strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock"):
		le := &LockedError{Path: path}
		if m := pidRE.FindStringSubmatch(msg); m != nil {
			le.PID = m[1]
		}
		return le
	case strings.Contains(msg, "not a valid DuckDB database") || strings.Contains(msg, "Invalid Input Error"):
		return fmt.Errorf("open database %s: not a DuckDB database file: %w", path, err)
	case strings.Contains(msg, "database does not exist") || strings.Contains(msg, "Cannot open database") && strings.Contains(msg, "read-only"):
		return fmt.Errorf("open database %s: no such database (run batstat fetch or batstat demo first): %w", path, err)
	}
	return fmt.Errorf("open database %s: %w", path, err)
}

// IsLocked reports whether err says the database is held by another process.
func IsLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}

// IsOutOfMemory reports whether err is DuckDB running out of its memory limit. A query says
// so with a typed error; the Appender only with text, hence the message check.
func IsOutOfMemory(err error) bool {
	var de *duckdb.Error
	if errors.As(err, &de) && de.Type == duckdb.ErrorTypeOutOfMemory {
		return true
	}
	return err != nil && (strings.Contains(err.Error(), "Out of Memory Error") ||
		strings.Contains(err.Error(), "could not allocate block"))
}

// DuckDBVersion returns the version of the DuckDB library batstat links (v1.5.6), asked of
// an in-memory database: a file written by it opens in DuckDB clients of that version.
func DuckDBVersion(ctx context.Context) (string, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", fmt.Errorf("duckdb: %w", err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("duckdb version: %w", err)
	}
	return v, nil
}
