package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The result of a load does not depend on how its rows fall into chunks: every chunk size,
// down to one row, settles repeated IDs and campaign conflicts as one whole load does, and
// the summary counts the rejected rows by kind.
func TestLoadRejectsDuplicatesAndCampaignConflicts(t *testing.T) {
	for _, chunk := range []int{1, 2, 3, 0} {
		t.Run(fmt.Sprintf("chunk-%d", chunk), func(t *testing.T) { testLoadDuplicates(t, chunk) })
	}
}

func testLoadDuplicates(t *testing.T, chunk int) {
	f := newFixture(t, smsbattest.Options{}, 0)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.csv", "message_id,campaign\n  id-1 ,spring\nid-2,spring\nid-1,spring\nid-3,spring\n,spring\n")
	b := writeFile(t, dir, "b.csv", "message_id,campaign\nid-2,summer\nid-4,summer\nid-1,spring\n")
	cfg := f.config(t)
	cfg.Inputs = []string{a, b}
	cfg.LoadChunk = chunk
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// id-1 three times and id-2 twice (once in another campaign): loaded once each, from
	// their first rows. The empty ID: rejected by the reader.
	type rej struct {
		File     string
		Line     int64
		Campaign string
		Reason   string
	}
	rejectedRows := func(runID int64) []rej {
		rows, err := f.db.Query(`SELECT file, line, campaign, reason FROM rejected_rows WHERE run_id = ? ORDER BY file, line`, runID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []rej
		for rows.Next() {
			var r rej
			if err := rows.Scan(&r.File, &r.Line, &r.Campaign, &r.Reason); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		return got
	}
	want := []rej{
		{a, 4, "spring", "duplicate of " + a + ":2"},
		{a, 6, "spring", "empty message ID"},
		{b, 2, "summer", "duplicate of " + a + ":3"},
		{b, 4, "spring", "duplicate of " + a + ":2"},
	}
	if diff := cmp.Diff(want, rejectedRows(sum.RunID)); diff != "" {
		t.Errorf("rejected_rows (-want +got):\n%s", diff)
	}
	if sum.NewMessages != 4 || sum.Rejected != 4 || sum.Requested != 4 || sum.IDsRead != 7 {
		t.Errorf("summary = %+v, want 7 IDs read, 4 new messages, 4 rejected, 4 requested", sum)
	}
	if diff := cmp.Diff(map[string]int64{"duplicate": 3, "empty_message_id": 1}, sum.RejectedBy); diff != "" {
		t.Errorf("RejectedBy (-want +got):\n%s", diff)
	}
	if f.srv.Count() != 4 || f.srv.CountFor("id-1") != 1 {
		t.Errorf("%d requests, %d for id-1; want 4, one per message", f.srv.Count(), f.srv.CountFor("id-1"))
	}
	if n := count(t, f.db, `SELECT count(*) - count(DISTINCT message_id) FROM messages`); n != 0 {
		t.Errorf("messages holds %d duplicate IDs", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages WHERE message_id = 'id-1' AND campaign = 'spring' AND source_line = 2`); n != 1 {
		t.Errorf("id-1 not loaded once, trimmed, from its first line")
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages WHERE message_id = 'id-2' AND campaign = 'spring'`); n != 1 {
		t.Errorf("id-2 not loaded under the campaign of its first row")
	}
	// A later run naming id-4 under another campaign is rejected against the stored
	// campaign, and its repeat as a duplicate; id-3 under its own campaign is asked again.
	c := writeFile(t, dir, "c.csv", "message_id,campaign\nid-4,autumn\nid-3,spring\nid-4,summer\n")
	cfg.Inputs = []string{c}
	cfg.Refresh = ingest.RefreshAll
	sum, err = ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want = []rej{
		{c, 2, "autumn", "already in campaign summer"},
		{c, 4, "summer", "duplicate of " + c + ":2"},
	}
	if diff := cmp.Diff(want, rejectedRows(sum.RunID)); diff != "" {
		t.Errorf("second run's rejected_rows (-want +got):\n%s", diff)
	}
	if sum.Rejected != 2 || sum.Requested != 1 || sum.NewMessages != 0 {
		t.Errorf("summary = %+v, want 2 rejected, 1 requested, no new message", sum)
	}
	if diff := cmp.Diff(map[string]int64{"duplicate": 1, "already_in_campaign": 1}, sum.RejectedBy); diff != "" {
		t.Errorf("second run's RejectedBy (-want +got):\n%s", diff)
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages WHERE message_id = 'id-4' AND campaign = 'summer'`); n != 1 {
		t.Errorf("id-4 changed campaign")
	}
}

// The summary line counts rejected rows by kind, the most frequent first, readable as text
// and as an object in JSON, and says nothing of kinds when nothing was rejected.
func TestSummaryLogsRejectedByKind(t *testing.T) {
	sum := &ingest.Summary{Rejected: 4, RejectedBy: map[string]int64{"empty_message_id": 1, "duplicate": 2, "already_in_campaign": 1}}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("fetch finished", sum.LogAttrs()...)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("fetch finished", sum.LogAttrs()...)
	wantText := "rejected=4 rejected_by.duplicate=2 rejected_by.already_in_campaign=1 rejected_by.empty_message_id=1 new_messages=0"
	if !strings.Contains(text.String(), wantText) {
		t.Errorf("text summary = %s, want %q in it", text.String(), wantText)
	}
	wantJSON := `"rejected":4,"rejected_by":{"duplicate":2,"already_in_campaign":1,"empty_message_id":1},"new_messages":0`
	if !strings.Contains(js.String(), wantJSON) {
		t.Errorf("JSON summary = %s, want %s in it", js.String(), wantJSON)
	}

	text.Reset()
	slog.New(slog.NewTextHandler(&text, nil)).Info("fetch finished", (&ingest.Summary{}).LogAttrs()...)
	if strings.Contains(text.String(), "rejected_by") {
		t.Errorf("summary without rejected rows = %s, want no rejected_by", text.String())
	}
}

func TestStrictFailsBeforeAnyRequest(t *testing.T) {
	for _, chunk := range []int{0, 1} {
		t.Run(fmt.Sprintf("chunk-%d", chunk), func(t *testing.T) { testStrict(t, chunk) })
	}
}

// testStrict: with chunks of one row, id-1 is committed before the bad row is read; the
// strict run must still end with no message of its own.
func testStrict(t *testing.T, chunk int) {
	f := newFixture(t, smsbattest.Options{}, 0)
	in := writeFile(t, t.TempDir(), "a.csv", "message_id\nid-1\nid\x07bad\nid-3\n")
	cfg := f.config(t)
	cfg.Inputs = []string{in}
	cfg.Strict = true
	cfg.LoadChunk = chunk
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	var se *ingest.StrictError
	if !errors.As(err, &se) || se.Rejected != 1 {
		t.Fatalf("Fetch error = %v, want a StrictError for 1 row", err)
	}
	if f.srv.Count() != 0 {
		t.Errorf("%d requests sent by a strict run with a rejected row", f.srv.Count())
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("strict run loaded %d messages", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM rejected_rows WHERE line = 3`); n != 1 {
		t.Errorf("the rejected row is not recorded")
	}
	if sum.Outcome != ingest.OutcomeFailed {
		t.Errorf("outcome = %s, want failed", sum.Outcome)
	}
	if n := count(t, f.db, `SELECT count(*) FROM runs WHERE loading`); n != 0 {
		t.Errorf("%d runs left loading", n)
	}
}

// A load that stops half-way (here: interrupted after its first chunks are committed) takes
// back the messages it added, so the next run loads the whole file.
func TestInterruptedLoadLeavesNoMessages(t *testing.T) {
	f := newFixture(t, smsbattest.Options{}, 0)
	input := springIDs(20_000)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	cfg := f.config(t)
	cfg.Inputs = []string{"-"}
	cfg.LoadChunk = 1000
	// The interrupt arrives 200 kB into the 300 kB input, well past the reader's first
	// buffer: a dozen chunks are committed by then.
	cfg.Stdin = &cancelAfter{r: strings.NewReader(input), n: 200_000, cancel: func() { cancel(errors.New("interrupt")) }}
	sum, err := ingest.Fetch(ctx, f.db, cfg)
	if err == nil || sum == nil || sum.Outcome != ingest.OutcomeInterrupted {
		t.Fatalf("Fetch = %+v, %v; want an interrupted run", sum, err)
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("an interrupted load left %d messages", n)
	}
	if f.srv.Count() != 0 {
		t.Errorf("%d requests sent by a run interrupted while loading", f.srv.Count())
	}
	cfg.Stdin = strings.NewReader(input)
	if sum, err = ingest.Fetch(context.Background(), f.db, cfg); err != nil || sum.NewMessages != 20_000 || sum.Answered != 20_000 {
		t.Errorf("the next run = %+v, %v; want 20000 new messages answered", sum, err)
	}
}

// springIDs is an ID list of n IDs of campaign spring, id-00000 on, with its header.
func springIDs(n int) string {
	var b strings.Builder
	b.WriteString("message_id,campaign\n")
	for i := range n {
		fmt.Fprintf(&b, "id-%05d,spring\n", i)
	}
	return b.String()
}

// cancelAfter reads r and calls cancel once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	p = p[:min(len(p), max(c.n, 1))]
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

// A process killed while loading leaves a run 'running' and loading with some committed
// chunks. message_status does not show them, and the next fetch takes them back before it
// loads the file again whole.
func TestCrashedLoadIsHiddenAndTakenBack(t *testing.T) {
	f := newFixture(t, smsbattest.Options{}, 6)
	// The state a kill -9 between two chunks leaves: run 1 loading, 2 of 6 messages added
	// (from line 0, to tell them from those loaded again).
	killedBetweenChunks(t, f.db, []store.Message{
		{MessageID: "msg-000000", Campaign: "camp-0", SourceFile: "ids.csv"},
		{MessageID: "msg-000001", Campaign: "camp-1", SourceFile: "ids.csv"},
	})
	if n := count(t, f.db, `SELECT count(*) FROM message_status`); n != 0 {
		t.Errorf("message_status shows %d messages of a run that never finished loading", n)
	}
	sum, err := ingest.Fetch(context.Background(), f.db, f.config(t))
	if err != nil || sum.NewMessages != 6 || sum.Answered != 6 {
		t.Fatalf("the next run = %+v, %v; want 6 new messages answered", sum, err)
	}
	if n := count(t, f.db, `SELECT count(*) FROM message_status WHERE run_id = $1 AND source_line > 0`, sum.RunID); n != 6 {
		t.Errorf("message_status shows %d messages of the new run, want 6 loaded from their lines", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM runs WHERE run_id = 1 AND outcome = 'crashed' AND NOT loading`); n != 1 {
		t.Errorf("the dead run is not recorded as crashed")
	}
}

func TestBadFileFailsBeforeAnything(t *testing.T) {
	f := newFixture(t, smsbattest.Options{}, 0)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.csv", "message_id\nid-1\n")
	for name, text := range map[string]string{
		"binary.csv": "message_id\n\x00\x01\x02\x00\x00",
		"empty.csv":  "",
		"noid.csv":   "phone,name\n123,ann\n",
	} {
		bad := writeFile(t, dir, name, text)
		cfg := f.config(t)
		cfg.Inputs = []string{good, bad}
		_, err := ingest.Fetch(context.Background(), f.db, cfg)
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error = %v, want one line naming the file", name, err)
		}
	}
	missing := filepath.Join(dir, "missing.csv")
	cfg := f.config(t)
	cfg.Inputs = []string{good, missing}
	if _, err := ingest.Fetch(context.Background(), f.db, cfg); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("missing file: error = %v", err)
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages`); n != 0 || f.srv.Count() != 0 {
		t.Errorf("a bad input still loaded %d messages and sent %d requests", n, f.srv.Count())
	}
}

// A file that turns out unreadable after thousands of good rows (a quote never closed)
// fails the run with the file's error once the chunks before it are committed: they are
// taken back, and nothing is asked. The rows are read ahead of the load, so this is also
// the reader's error reaching the load after the rows before it.
func TestFileFailingMidwayTakesBackItsChunks(t *testing.T) {
	f := newFixture(t, smsbattest.Options{}, 0)
	torn := springIDs(5_000) + "\"id-broken,spring\nid-after,spring\n"
	cfg := f.config(t)
	cfg.Inputs = []string{writeFile(t, t.TempDir(), "torn.csv", torn)}
	cfg.LoadChunk = 1000
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err == nil || !strings.Contains(err.Error(), "torn.csv line 5002") || sum == nil || sum.Outcome != ingest.OutcomeFailed {
		t.Fatalf("Fetch = %+v, %v; want a failed run naming torn.csv line 5002", sum, err)
	}
	if sum.IDsRead != 5_000 {
		t.Errorf("IDs read = %d, want the 5000 before the torn line", sum.IDsRead)
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages`); n != 0 || f.srv.Count() != 0 {
		t.Errorf("a file failing midway left %d messages and sent %d requests", n, f.srv.Count())
	}
}

func TestHostileIDsReachTheAPIAsOneSegment(t *testing.T) {
	opts := smsbattest.Options{KeepLog: true}
	f := newFixture(t, opts, 0)
	ids := []string{"a/b", "x?y=1", "#frag", "100%", "..", ".", "with space", "ünï/cødé", "a%2Fb", `q"uote`, "semi;colon"}
	var b strings.Builder
	b.WriteString("message_id\n")
	for _, id := range ids {
		b.WriteString(`"` + strings.ReplaceAll(id, `"`, `""`) + "\"\n")
	}
	in := writeFile(t, t.TempDir(), "hostile.csv", b.String())
	cfg := f.config(t)
	cfg.Inputs = []string{in}
	sum, err := ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Answered != int64(len(ids)) || sum.NotFound != 0 {
		t.Fatalf("summary = %+v, want all %d answered with a status", sum, len(ids))
	}
	var got []string
	for _, r := range f.srv.Requests() {
		rest, ok := strings.CutPrefix(r.RawPath, "/bat/message/")
		if !ok || strings.Contains(rest, "/") || strings.ContainsAny(rest, "?#") {
			t.Errorf("request path %q is not one segment under /bat/message/", r.RawPath)
		}
		got = append(got, r.ID)
	}
	slices.Sort(got)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("IDs seen by the server = %q, want %q", got, want)
	}
	if n := count(t, f.db, `SELECT count(*) FROM message_status WHERE deliverystatus IS NOT NULL`); n != int64(len(ids)) {
		t.Errorf("answered messages in the database = %d, want %d", n, len(ids))
	}
}

// killedBetweenChunks leaves db as a process killed during a load leaves it: a run still
// running and loading, whose first chunk, msgs, is committed.
func killedBetweenChunks(t *testing.T, db *store.DB, msgs []store.Message) {
	t.Helper()
	ctx := context.Background()
	runID, err := db.StartRun(ctx, store.RunStart{})
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
	defer l.Close()
	for i := range msgs {
		if err := l.Stage(&msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}
