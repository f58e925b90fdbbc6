package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/store"
)

// row is one input row of a load: a message to stage, or (reason set) a row the reader
// rejected.
type row struct {
	file     string
	line     int64
	id       string
	campaign string
	reason   string // a Reject of this kind and reason when set
	kind     string
}

// rejected is a rejected_rows row of the load.
type rejected struct {
	File, Campaign, ID, Reason string
	Line                       int64
}

// loaded is a messages row.
type loaded struct {
	Campaign, File string
	Line           int64
	Run            int64
}

func msg(file string, line int64, id, campaign string) row {
	return row{file: file, line: line, id: id, campaign: campaign}
}

// The first occurrence of an ID in a run's input is the one loaded; every later row naming
// it is rejected as its duplicate, and a first occurrence naming another campaign than the
// one an earlier run loaded the ID under is rejected too. The outcome is the same for
// every chunk size: a repeat may fall in a later chunk than its first occurrence.
func TestLoadRejectsDuplicatesAndCampaignConflicts(t *testing.T) {
	tests := []struct {
		name string
		// before is loaded by run 1, in one chunk; rows by run 2.
		before, rows []row
		wantMessages map[string]loaded // of run 2's input
		wantRejected []rejected        // of run 2
		wantBy       map[string]int64
		wantAsk      []string // in input order
	}{{
		name: "repeat in one file",
		rows: []row{msg("a.csv", 2, "id-1", "c"), msg("a.csv", 3, "id-2", "c"), msg("a.csv", 4, "id-1", "c")},
		wantMessages: map[string]loaded{
			"id-1": {"c", "a.csv", 2, 2},
			"id-2": {"c", "a.csv", 3, 2},
		},
		wantRejected: []rejected{{"a.csv", "c", "id-1", "duplicate of a.csv:2", 4}},
		wantBy:       map[string]int64{store.KindDuplicate: 1},
		wantAsk:      []string{"id-1", "id-2"},
	}, {
		name: "every repeat names the first occurrence",
		rows: []row{msg("a.csv", 2, "id-1", "c"), msg("a.csv", 3, "id-1", "c"), msg("a.csv", 4, "id-1", "c")},
		wantMessages: map[string]loaded{
			"id-1": {"c", "a.csv", 2, 2},
		},
		wantRejected: []rejected{
			{"a.csv", "c", "id-1", "duplicate of a.csv:2", 3},
			{"a.csv", "c", "id-1", "duplicate of a.csv:2", 4},
		},
		wantBy:  map[string]int64{store.KindDuplicate: 2},
		wantAsk: []string{"id-1"},
	}, {
		name: "repeat in another file, as the input was named",
		rows: []row{
			msg("in/a.csv", 7, "id-1", "c"), msg("in/a.csv", 8, "id-2", "c"),
			msg("-", 2, "id-2", "c"), msg("-", 3, "id-1", "c"), msg("b b.csv", 4, "id-1", "c"),
		},
		wantMessages: map[string]loaded{
			"id-1": {"c", "in/a.csv", 7, 2},
			"id-2": {"c", "in/a.csv", 8, 2},
		},
		wantRejected: []rejected{
			{"-", "c", "id-2", "duplicate of in/a.csv:8", 2},
			{"-", "c", "id-1", "duplicate of in/a.csv:7", 3},
			{"b b.csv", "c", "id-1", "duplicate of in/a.csv:7", 4},
		},
		wantBy:  map[string]int64{store.KindDuplicate: 3},
		wantAsk: []string{"id-1", "id-2"},
	}, {
		// A repeat naming another campaign is a duplicate like any other: the first
		// occurrence wins, and the rejected row keeps the campaign it named.
		name: "repeat naming another campaign",
		rows: []row{msg("a.csv", 2, "id-1", "spring"), msg("b.csv", 2, "id-1", "summer"), msg("b.csv", 3, "id-2", "summer")},
		wantMessages: map[string]loaded{
			"id-1": {"spring", "a.csv", 2, 2},
			"id-2": {"summer", "b.csv", 3, 2},
		},
		wantRejected: []rejected{{"b.csv", "summer", "id-1", "duplicate of a.csv:2", 2}},
		wantBy:       map[string]int64{store.KindDuplicate: 1},
		wantAsk:      []string{"id-1", "id-2"},
	}, {
		name:   "already loaded under another campaign",
		before: []row{msg("old.csv", 2, "id-9", "Spring Sale 'B'"), msg("old.csv", 3, "id-8", "autumn")},
		rows: []row{
			msg("a.csv", 2, "id-9", "autumn"), msg("a.csv", 3, "id-8", "autumn"),
			msg("a.csv", 4, "id-9", "Spring Sale 'B'"), msg("a.csv", 5, "id-7", "autumn"),
		},
		wantMessages: map[string]loaded{
			"id-9": {"Spring Sale 'B'", "old.csv", 2, 1},
			"id-8": {"autumn", "old.csv", 3, 1},
			"id-7": {"autumn", "a.csv", 5, 2},
		},
		wantRejected: []rejected{
			{"a.csv", "autumn", "id-9", "already in campaign Spring Sale 'B'", 2},
			{"a.csv", "Spring Sale 'B'", "id-9", "duplicate of a.csv:2", 4},
		},
		wantBy:  map[string]int64{store.KindAlreadyInCampaign: 1, store.KindDuplicate: 1},
		wantAsk: []string{"id-8", "id-7"},
	}, {
		// Rows the reader rejected are counted by their kind; they are no occurrence.
		name: "rows the reader rejected",
		rows: []row{
			{file: "a.csv", line: 2, campaign: "c", reason: "empty message ID", kind: "empty_message_id"},
			msg("a.csv", 3, "id-1", "c"),
			{file: "a.csv", line: 4, id: "id-1", campaign: "c", reason: "3 fields, header has 2", kind: "field_count"},
			{file: "a.csv", line: 5, campaign: "c", reason: "empty message ID", kind: "empty_message_id"},
			{file: "a.csv", line: 6, id: "x", campaign: "c", reason: "no kind"},
			msg("a.csv", 7, "id-1", "c"),
		},
		wantMessages: map[string]loaded{"id-1": {"c", "a.csv", 3, 2}},
		wantRejected: []rejected{
			{"a.csv", "c", "", "empty message ID", 2},
			{"a.csv", "c", "id-1", "3 fields, header has 2", 4},
			{"a.csv", "c", "", "empty message ID", 5},
			{"a.csv", "c", "x", "no kind", 6},
			{"a.csv", "c", "id-1", "duplicate of a.csv:3", 7},
		},
		wantBy:  map[string]int64{"empty_message_id": 2, "field_count": 1, store.KindOther: 1, store.KindDuplicate: 1},
		wantAsk: []string{"id-1"},
	}, {
		name:         "no repeats",
		rows:         []row{msg("a.csv", 2, "id-1", "c"), msg("a.csv", 3, "id-2", "c")},
		wantMessages: map[string]loaded{"id-1": {"c", "a.csv", 2, 2}, "id-2": {"c", "a.csv", 3, 2}},
		wantBy:       map[string]int64{},
		wantAsk:      []string{"id-1", "id-2"},
	}}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 1000} {
			t.Run(fmt.Sprintf("%s/chunk-%d", tt.name, chunk), func(t *testing.T) {
				ctx := context.Background()
				db, err := store.Open(ctx, filepath.Join(t.TempDir(), "l.duckdb"), store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				load(t, db, tt.before, 1000) // run 1, perhaps of no rows
				runID, counts, ask := load(t, db, tt.rows, chunk)

				var wantRows int64
				for _, r := range tt.rows {
					if r.reason == "" {
						wantRows++
					}
				}
				if counts.IDsRead != wantRows || counts.Rejected != int64(len(tt.wantRejected)) ||
					counts.ToAsk != int64(len(tt.wantAsk)) {
					t.Errorf("counts = %+v, want %d IDs read, %d rejected, %d to ask", counts, wantRows, len(tt.wantRejected), len(tt.wantAsk))
				}
				if diff := cmp.Diff(tt.wantBy, counts.RejectedBy); diff != "" {
					t.Errorf("RejectedBy (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantAsk, ask); diff != "" {
					t.Errorf("messages to ask (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantMessages, messagesOf(t, db, tt.rows)); diff != "" {
					t.Errorf("messages (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantRejected, rejectedOf(t, db, runID)); diff != "" {
					t.Errorf("rejected_rows (-want +got):\n%s", diff)
				}
				var recorded int64
				if err := db.QueryRow(`SELECT rejected FROM runs WHERE run_id = $1`, runID).Scan(&recorded); err != nil || recorded != counts.Rejected {
					t.Errorf("runs.rejected = %d, %v; want %d", recorded, err, counts.Rejected)
				}
			})
		}
	}
}

// load loads rows as a run, settling every chunk staged rows, and returns the run, its
// counts and the IDs to ask in order.
func load(t *testing.T, db *store.DB, rows []row, chunk int) (int64, store.LoadCounts, []string) {
	t.Helper()
	ctx := context.Background()
	runID, err := db.StartRun(ctx, store.RunStart{Inputs: "test"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	l, err := db.StartLoad(ctx, conn, store.LoadOptions{RunID: runID, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	staged := 0
	for _, r := range rows {
		if r.reason != "" {
			if err := l.Reject(&store.Rejection{File: r.file, Line: r.line, Campaign: r.campaign,
				MessageID: r.id, Reason: r.reason, Kind: r.kind}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := l.Stage(&store.Message{MessageID: r.id, Campaign: r.campaign, SourceFile: r.file, SourceLine: r.line}); err != nil {
			t.Fatal(err)
		}
		if staged++; staged == chunk {
			if err := l.Settle(ctx); err != nil {
				t.Fatal(err)
			}
			staged = 0
		}
	}
	if err := l.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	counts, err := l.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ask []string
	if _, err := store.TodoPage(ctx, conn, -1, 1000, func(_ int64, id string, _ bool) bool {
		ask = append(ask, id)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return runID, counts, ask
}

// messagesOf returns the messages rows of the IDs of rows.
func messagesOf(t *testing.T, db *store.DB, rows []row) map[string]loaded {
	t.Helper()
	got := map[string]loaded{}
	for _, r := range rows {
		if r.id == "" || r.reason != "" {
			continue
		}
		var m loaded
		err := db.QueryRow(`SELECT campaign, source_file, source_line, run_id FROM messages WHERE message_id = $1`, r.id).
			Scan(&m.Campaign, &m.File, &m.Line, &m.Run)
		if err != nil {
			t.Fatalf("message %s: %v", r.id, err)
		}
		got[r.id] = m
	}
	var dups int64
	if err := db.QueryRow(`SELECT count(*) - count(DISTINCT message_id) FROM messages`).Scan(&dups); err != nil || dups != 0 {
		t.Errorf("messages holds %d repeated IDs (%v)", dups, err)
	}
	return got
}

func rejectedOf(t *testing.T, db *store.DB, runID int64) []rejected {
	t.Helper()
	rows, err := db.Query(`SELECT file, coalesce(campaign, ''), coalesce(message_id, ''), reason, line
		FROM rejected_rows WHERE run_id = $1 ORDER BY file, line`, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []rejected
	for rows.Next() {
		var r rejected
		if err := rows.Scan(&r.File, &r.Campaign, &r.ID, &r.Reason, &r.Line); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}
