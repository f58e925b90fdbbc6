package store

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/batstat/batstat/smsbat"
)

// SchemaVersion is the version of the schema this package creates, recorded in
// batstat_meta.schema_version. 1: messages keyed by a PRIMARY KEY; 2: no key, runs.loading;
// 3: the macros is_terminal, message_time, all_campaigns, in_campaigns and in_period; 4:
// status_checks.source and received_at (pushed statuses), webhook_positions.
const SchemaVersion = 4

// schemaVersionKey is the batstat_meta key of the schema version.
const schemaVersionKey = "schema_version"

//go:embed schema.sql
var schemaSQL string

// schema is schema.sql with smsbat's terminal statuses filled in: the Go and SQL sides of
// "terminal" read the same list.
var schema = fillTerminalStatuses(schemaSQL)

const terminalPlaceholder = "/* terminal statuses */"

func fillTerminalStatuses(sqlText string) string {
	if strings.Count(sqlText, terminalPlaceholder) != 1 {
		panic("store: schema.sql must hold " + terminalPlaceholder + " once")
	}
	quoted := make([]string, 0, 3)
	for _, s := range smsbat.TerminalStatuses() {
		quoted = append(quoted, "'"+strings.ReplaceAll(s, "'", "''")+"'")
	}
	return strings.Replace(sqlText, terminalPlaceholder, strings.Join(quoted, ", "), 1)
}

// migrate brings the schema of the file behind conn up to date in one transaction: the
// first schema's messages key is dropped, schema.sql is applied and the version recorded.
func migrate(ctx context.Context, conn *sql.Conn) error {
	return inTx(ctx, conn, func() error {
		if err := dropMessagesKey(ctx, conn); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("apply schema: %w", err)
		}
		return setMeta(ctx, conn, schemaVersionKey, strconv.Itoa(SchemaVersion))
	})
}

// dropMessagesKey rebuilds a messages table made with a PRIMARY KEY (files of batstat's first
// schema) without it, keeping every row and the NOT NULL columns. The view over messages is
// dropped with it; the schema that follows creates it again.
func dropMessagesKey(ctx context.Context, conn *sql.Conn) error {
	var keyed bool
	if err := conn.QueryRowContext(ctx, `
		SELECT count(*) > 0 FROM duckdb_constraints()
		WHERE schema_name = 'main' AND table_name = 'messages' AND constraint_type = 'PRIMARY KEY'`,
	).Scan(&keyed); err != nil || !keyed {
		return err
	}
	if _, err := conn.ExecContext(ctx, `
		DROP VIEW IF EXISTS message_status;
		ALTER TABLE messages RENAME TO messages_keyed;
		CREATE TABLE messages AS SELECT * FROM messages_keyed;
		ALTER TABLE messages ALTER COLUMN message_id SET NOT NULL;
		ALTER TABLE messages ALTER COLUMN campaign SET NOT NULL;
		ALTER TABLE messages ALTER COLUMN first_loaded_at SET NOT NULL;
		DROP TABLE messages_keyed;`); err != nil {
		return fmt.Errorf("drop the primary key of messages: %w", err)
	}
	return nil
}

// schemaVersion reads the file's schema version; ok is false for a DuckDB file that batstat
// did not make (no batstat_meta, or no version in it), which batstat leaves alone.
func schemaVersion(ctx context.Context, q querier) (version int, ok bool, err error) {
	var tables int
	if err := q.QueryRowContext(ctx, `
		SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'batstat_meta'`,
	).Scan(&tables); err != nil || tables == 0 {
		return 0, false, err
	}
	v, ok, err := getMeta(ctx, q, schemaVersionKey)
	if err != nil || !ok {
		return 0, false, err
	}
	version, err = strconv.Atoi(v)
	if err != nil {
		return 0, false, fmt.Errorf("schema version %q: %w", v, err)
	}
	return version, true, nil
}
