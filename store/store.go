// Package store owns the batstat DuckDB file: opening it read-write or read-only, applying
// the schema from package queries, and turning DuckDB's low-level failures (a file locked by
// another process, a file that is not a database) into errors a user can act on.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/queries"
)

// Options tune how a database file is opened.
type Options struct {
	// ReadOnly opens the file without write access and without applying the schema. The
	// file must already exist.
	ReadOnly bool
	// Threads and MemoryLimit cap DuckDB's resources (0 / "" keep DuckDB's defaults: all
	// cores and 80% of RAM), for cron jobs on shared hosts.
	Threads     int
	MemoryLimit string
}

// DB is an open batstat database. It is safe for concurrent use like *sql.DB; stateful work
// (transactions, the Appender) must pin a connection with DB.Conn.
type DB struct {
	*sql.DB
	Path      string
	connector *duckdb.Connector
}

// LockedError reports that another process holds the database file.
type LockedError struct {
	Path string
	PID  string // the holder's PID when DuckDB names it
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID != "" {
		holder = "another process (PID " + e.PID + ")"
	}
	return fmt.Sprintf("database %s is in use by %s; wait for it to finish or use another --db", e.Path, holder)
}

var pidRE = regexp.MustCompile(`PID (\d+)`)

// Open opens (creating it if needed, unless read-only) the database at path and, for a
// read-write open, brings its schema up to date.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	dsn := path
	var params []string
	if opts.ReadOnly {
		params = append(params, "access_mode=READ_ONLY")
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
		return nil, openError(path, err)
	}
	db := &DB{DB: sql.OpenDB(connector), Path: path, connector: connector}
	// Surface lock and format errors now rather than on the first query.
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	if !opts.ReadOnly {
		if err := dropMessagesKey(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("update schema of %s: %w", path, err)
		}
		if _, err := db.ExecContext(ctx, queries.Schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("apply schema to %s: %w", path, err)
		}
	}
	return db, nil
}

// dropMessagesKey rebuilds a messages table made with a PRIMARY KEY (files of batstat's first
// schema) without it, keeping every row and the NOT NULL columns, in one transaction. The
// view over messages is dropped with it; the schema that follows creates it again.
func dropMessagesKey(ctx context.Context, db *DB) error {
	var keyed bool
	if err := db.QueryRowContext(ctx, `
		SELECT count(*) > 0 FROM duckdb_constraints()
		WHERE schema_name = 'main' AND table_name = 'messages' AND constraint_type = 'PRIMARY KEY'`,
	).Scan(&keyed); err != nil || !keyed {
		return err
	}
	_, err := db.ExecContext(ctx, `
		BEGIN TRANSACTION;
		DROP VIEW IF EXISTS message_status;
		ALTER TABLE messages RENAME TO messages_keyed;
		CREATE TABLE messages AS SELECT * FROM messages_keyed;
		ALTER TABLE messages ALTER COLUMN message_id SET NOT NULL;
		ALTER TABLE messages ALTER COLUMN campaign SET NOT NULL;
		ALTER TABLE messages ALTER COLUMN first_loaded_at SET NOT NULL;
		DROP TABLE messages_keyed;
		COMMIT;`)
	if err != nil {
		db.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("drop the primary key of messages: %w", err)
	}
	return nil
}

// Close closes the database, checkpointing the WAL into the file.
func (db *DB) Close() error {
	err := db.DB.Close()
	if cerr := db.connector.Close(); err == nil {
		err = cerr
	}
	return err
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
