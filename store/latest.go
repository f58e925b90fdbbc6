package store

import (
	"context"
	"database/sql"
	"fmt"
)

// latestKey ranks the answers of one message: the latest is the one with the greatest key.
// A terminal status comes before any other, then the newest checked_at. Pushed events
// arrive out of order (a "processing" delivered after "delivered"), and a terminal status
// never changes again, so no later non-terminal answer may undo one. Every query that picks
// "the latest answer" ranks by this rule (is_terminal first, then checked_at). It is one
// BIGINT, 2^62 for a terminal status plus checked_at in microseconds since 1970 (within
// ±2^62 for 146,000 years either side), because an aggregate that ranks by a STRUCT of the
// two costs several times more per row.
const latestKey = `(CASE WHEN is_terminal(deliverystatus) THEN 4611686018427387904 ELSE 0 END + epoch_us(checked_at))`

// beatsNew is the condition, over status_latest s and a new answer n of the same message,
// under which the stored answer stays the latest (latestKey): terminal against
// non-terminal, or as terminal and newer. On a tie the new answer wins, as the fetch
// writer's answers always did.
const beatsNew = `((is_terminal(s.deliverystatus) AND NOT is_terminal(n.deliverystatus))
	OR (is_terminal(s.deliverystatus) = is_terminal(n.deliverystatus) AND s.checked_at > n.checked_at))`

// mergeLatest brings status_latest up to date, inside the caller's transaction, with
// candidates: a query of rows with status_latest's columns, at most one per message (the
// first of its new answers by latestKey). A candidate replaces its message's row unless
// that row comes first by latestKey. mayReplace false says no message of candidates has
// a row yet (a campaign's first fetch): they are inserted as they are, without the lookup
// of the rows they replace.
//
// The lookup is the one scan of status_latest, a join whose hash table is built from the
// candidates; it notes the rowid of each row to replace, so that the delete that follows
// finds them by rowid instead of matching every message_id of the table again; when no
// candidate has a row yet, both deletes are skipped.
func mergeLatest(ctx context.Context, conn *sql.Conn, candidates string, mayReplace bool) error {
	if !mayReplace {
		if _, err := conn.ExecContext(ctx, `INSERT INTO status_latest `+candidates); err != nil {
			return fmt.Errorf("update the latest answers: %w", err)
		}
		return nil
	}
	stmts := []string{
		`CREATE OR REPLACE TEMP TABLE latest_new AS ` + candidates,
		`CREATE OR REPLACE TEMP TABLE latest_old AS
			SELECT s.rowid AS rid, n.message_id, ` + beatsNew + ` AS keep
			FROM latest_new n JOIN status_latest s ON s.message_id = n.message_id`,
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("update the latest answers: %w", err)
		}
	}
	var old int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM latest_old`).Scan(&old); err != nil {
		return fmt.Errorf("update the latest answers: %w", err)
	}
	stmts = nil
	if old > 0 {
		stmts = append(stmts,
			`DELETE FROM latest_new WHERE message_id IN (SELECT message_id FROM latest_old WHERE keep)`,
			`DELETE FROM status_latest WHERE rowid IN (SELECT rid FROM latest_old WHERE NOT keep)`)
	}
	stmts = append(stmts, `INSERT INTO status_latest SELECT * FROM latest_new`, `DROP TABLE latest_new`, `DROP TABLE latest_old`)
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("update the latest answers: %w", err)
		}
	}
	return nil
}
