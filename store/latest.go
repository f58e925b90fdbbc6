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
const beatsNew = `(is_terminal(s.deliverystatus) AND NOT is_terminal(n.deliverystatus))
	OR (is_terminal(s.deliverystatus) = is_terminal(n.deliverystatus) AND s.checked_at > n.checked_at)`

// mergeLatest brings status_latest up to date, inside the caller's transaction, with
// candidates: a query of rows with status_latest's columns, at most one per message (the
// first of its new answers by latestOrder). A candidate replaces its message's row unless
// that row comes first by latestOrder. mayReplace false says no message of candidates has
// a row yet (a campaign's first fetch): they are inserted as they are, without the lookups
// of the rows to keep and to delete, each a scan of status_latest.
func mergeLatest(ctx context.Context, conn *sql.Conn, candidates string, mayReplace bool) error {
	stmts := []string{`INSERT INTO status_latest ` + candidates}
	if mayReplace {
		stmts = []string{
			`CREATE OR REPLACE TEMP TABLE latest_new AS ` + candidates,
			// The join builds its hash table from the new answers, not from status_latest.
			`DELETE FROM latest_new WHERE message_id IN (
				SELECT n.message_id FROM latest_new n JOIN status_latest s ON s.message_id = n.message_id
				WHERE ` + beatsNew + `)`,
			`DELETE FROM status_latest WHERE message_id IN (SELECT message_id FROM latest_new)`,
			`INSERT INTO status_latest SELECT * FROM latest_new`,
			`DROP TABLE latest_new`,
		}
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("update the latest answers: %w", err)
		}
	}
	return nil
}
