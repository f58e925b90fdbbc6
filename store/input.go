package store

import (
	"context"
	"database/sql"
	"fmt"
)

// CampaignInput is what one campaign of a run's input holds, as a load on conn left it.
type CampaignInput struct {
	Campaign string
	// IDs counts the input's messages of the campaign: the IDs loaded under it, each once.
	IDs int64
	// Rejected counts its input rows in rejected_rows (repeats, conflicts, unreadable rows).
	Rejected int64
	// New counts the IDs the run added to messages; Final those whose latest answer is
	// terminal, which --refresh pending does not ask again.
	New, Final int64
}

// InputCounts returns, by campaign name, what the inputs of run runID hold: its messages
// are those of the todo table of conn, the connection of a load made with RefreshAll (see
// StartLoad), so that the table holds every message of the input. A campaign whose rows
// were all rejected has a row too, with IDs 0; rows rejected before a campaign could be
// read count under "".
func InputCounts(ctx context.Context, conn *sql.Conn, runID int64) ([]CampaignInput, error) {
	rows, err := conn.QueryContext(ctx, `
		WITH ids AS (
			SELECT m.campaign, count(*) AS ids,
			       count(*) FILTER (WHERE m.run_id = $1) AS new,
			       count(*) FILTER (WHERE is_terminal(s.deliverystatus)) AS final
			FROM todo t
			JOIN messages m ON m.message_id = t.message_id
			LEFT JOIN status_latest s ON s.message_id = t.message_id
			GROUP BY m.campaign
		), rejected AS (
			SELECT coalesce(campaign, '') AS campaign, count(*) AS rejected
			FROM rejected_rows WHERE run_id = $1
			GROUP BY ALL
		)
		SELECT campaign, coalesce(i.ids, 0), coalesce(r.rejected, 0), coalesce(i.new, 0), coalesce(i.final, 0)
		FROM ids i FULL JOIN rejected r USING (campaign)
		ORDER BY campaign`, runID)
	if err != nil {
		return nil, fmt.Errorf("count the input by campaign: %w", err)
	}
	defer rows.Close()
	var out []CampaignInput
	for rows.Next() {
		var c CampaignInput
		if err := rows.Scan(&c.Campaign, &c.IDs, &c.Rejected, &c.New, &c.Final); err != nil {
			return nil, fmt.Errorf("count the input by campaign: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count the input by campaign: %w", err)
	}
	return out, nil
}

// RejectedRow is an input row that was not loaded, as rejected_rows keeps it.
type RejectedRow struct {
	File      string
	Line      int64
	Campaign  string
	MessageID string
	Reason    string
}

// RejectedRows returns the first limit rows run runID rejected, in input order (file,
// line), and how many it rejected in all.
func RejectedRows(ctx context.Context, q *sql.Conn, runID int64, limit int) ([]RejectedRow, int64, error) {
	var total int64
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM rejected_rows WHERE run_id = $1`, runID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("read rejected rows: %w", err)
	}
	rows, err := q.QueryContext(ctx, `
		SELECT file, line, coalesce(campaign, ''), coalesce(message_id, ''), reason
		FROM rejected_rows WHERE run_id = $1
		ORDER BY file, line LIMIT $2`, runID, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("read rejected rows: %w", err)
	}
	defer rows.Close()
	var out []RejectedRow
	for rows.Next() {
		var r RejectedRow
		if err := rows.Scan(&r.File, &r.Line, &r.Campaign, &r.MessageID, &r.Reason); err != nil {
			return nil, 0, fmt.Errorf("read rejected rows: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read rejected rows: %w", err)
	}
	return out, total, nil
}
