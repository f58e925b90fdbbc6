package store

import (
	"context"
	"database/sql"
	"fmt"
)

// latestOrder ranks the answers of one message, the latest first: a terminal status before
// any other, then the newest checked_at. Pushed events arrive out of order (a "processing"
// delivered after "delivered"), and a terminal status never changes again, so no later
// non-terminal answer may undo one. Every query that picks "the latest answer" ranks by it;
// a received_at breaks a tie between two pushed copies.
const latestOrder = `is_terminal(deliverystatus) DESC, checked_at DESC, received_at DESC NULLS LAST`

// beatsNew is the condition, over status_latest s and a new answer n of the same message,
// under which the stored answer stays the latest (latestOrder): terminal against
// non-terminal, or as terminal and newer. On a tie the new answer wins, as the fetch
// writer's answers always did.
const beatsNew = `(is_terminal(s.deliverystatus) AND NOT is_terminal(n.deliverystatus))
	OR (is_terminal(s.deliverystatus) = is_terminal(n.deliverystatus) AND s.checked_at > n.checked_at)`

// mergeLatest brings status_latest up to date with the answers of the table from (the
// columns of status_checks), inside the caller's transaction: for each message, the
// answer of from that comes first by latestOrder replaces its status_latest row, unless
// that row comes first. mayReplace false says no message of from has a row in
// status_latest yet (a campaign's first fetch): the lookups of the rows to keep and to
// delete, each a scan of status_latest, are skipped.
func mergeLatest(ctx context.Context, conn *sql.Conn, from string, mayReplace bool) error {
	stmts := []string{`CREATE OR REPLACE TEMP TABLE latest_new AS
		SELECT * EXCLUDE (raw) FROM ` + from + `
		QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY ` + latestOrder + `) = 1`}
	if mayReplace {
		stmts = append(stmts,
			// The join builds its hash table from the new answers, not from status_latest.
			`DELETE FROM latest_new WHERE message_id IN (
				SELECT n.message_id FROM latest_new n JOIN status_latest s ON s.message_id = n.message_id
				WHERE `+beatsNew+`)`,
			`DELETE FROM status_latest WHERE message_id IN (SELECT message_id FROM latest_new)`)
	}
	stmts = append(stmts, `INSERT INTO status_latest SELECT * FROM latest_new`, `DROP TABLE latest_new`)
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("update the latest answers: %w", err)
		}
	}
	return nil
}
