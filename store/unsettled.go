package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Unsettled is a message of a run's input without a terminal status, with what the asking
// schedule needs to know about it. Which messages are due is the schedule's to decide (Go),
// not the database's: this is data only.
type Unsettled struct {
	Seq       int64 // its place in the run's input (the todo table's seq)
	MessageID string
	Campaign  string
	Answered  bool // it has an answer in status_latest, which the next one replaces
	// SentAt is the input's sent time read as a timestamp, as the message_time macro reads
	// it; zero when the input gave none (SentText "") or one that does not parse.
	SentAt        time.Time
	SentText      string // the sent time as the input wrote it; "" for none
	FirstLoadedAt time.Time
	CheckedAt     time.Time // of its latest answer; zero for none
	FailedAt      time.Time // of its latest failed attempt (fetch_errors); zero for none
}

// ScanUnsettled fills the temp table unsettled of conn, the connection that loaded the
// run's inputs (see StartLoad), with the messages of its todo table that have no terminal
// status now, and returns how many there are. UnsettledPage reads it back. Each call
// replaces the table, so a run scans again after each pass.
func ScanUnsettled(ctx context.Context, conn *sql.Conn) (int64, error) {
	// todo is the build side of every join: a run's input, not the whole file. The table is
	// not sorted: each page sorts its own window of seq (see seqPage), where sorting the
	// whole of it held up to a million rows in memory at once.
	if _, err := conn.ExecContext(ctx, `
		CREATE OR REPLACE TEMP TABLE unsettled AS
		SELECT t.seq, t.message_id, m.campaign, s.message_id IS NOT NULL AS answered,
		       try_cast(m.sent_at AS TIMESTAMPTZ) AS sent_at, m.sent_at AS sent_text,
		       m.first_loaded_at, s.checked_at, e.failed_at
		FROM todo t
		JOIN messages m ON m.message_id = t.message_id
		LEFT JOIN status_latest s ON s.message_id = t.message_id
		LEFT JOIN (
			SELECT message_id, max(failed_at) AS failed_at
			FROM fetch_errors
			WHERE message_id IN (SELECT message_id FROM todo)
			GROUP BY message_id
		) e ON e.message_id = t.message_id
		WHERE NOT is_terminal(s.deliverystatus)`); err != nil {
		return 0, fmt.Errorf("read messages without a final status: %w", err)
	}
	var n int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM unsettled`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count messages without a final status: %w", err)
	}
	return n, nil
}

// UnsettledPage calls each for the rows of the unsettled table of conn (see ScanUnsettled)
// that follow seq after, in input order, at most limit of them, until each returns false;
// it returns how many rows the page held, 0 only when no row follows after. Paging is the
// caller's, as for TodoPage.
func UnsettledPage(ctx context.Context, conn *sql.Conn, after int64, limit int, each func(*Unsettled) bool) (int, error) {
	return seqPage(ctx, conn, "unsettled", after, limit, func(lo, hi int64) (int, error) {
		rows, err := conn.QueryContext(ctx, `
			SELECT seq, message_id, campaign, answered, sent_at, sent_text, first_loaded_at, checked_at, failed_at
			FROM unsettled WHERE seq > $1 AND seq <= $2 ORDER BY seq`, lo, hi)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var u Unsettled
			var sent, checked, failed sql.NullTime
			var sentText sql.NullString
			if err := rows.Scan(&u.Seq, &u.MessageID, &u.Campaign, &u.Answered, &sent, &sentText, &u.FirstLoadedAt, &checked, &failed); err != nil {
				return n, err
			}
			u.SentAt, u.SentText, u.CheckedAt, u.FailedAt = sent.Time, sentText.String, checked.Time, failed.Time
			n++
			if !each(&u) {
				return n, nil
			}
		}
		return n, rows.Err()
	})
}
