package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
// down to one row, settles duplicates and conflicts as one whole load does.
func TestLoadDeduplicatesAndRejectsCampaignConflicts(t *testing.T) {
	for _, chunk := range []int{0, 1, 2, 3} {
		t.Run(fmt.Sprintf("chunk-%d", chunk), func(t *testing.T) { testLoadDeduplicates(t, chunk) })
	}
}

func testLoadDeduplicates(t *testing.T, chunk int) {
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
	// id-1 twice in one campaign: loaded once. id-2 in another campaign: rejected. Empty ID: rejected.
	if sum.NewMessages != 4 || sum.Rejected != 2 || sum.Requested != 4 {
		t.Errorf("summary = %+v, want 4 new messages, 2 rejected, 4 requested", sum)
	}
	var reason, file string
	var line int64
	if err := f.db.QueryRow(`SELECT reason, file, line FROM rejected_rows WHERE message_id = 'id-2'`).Scan(&reason, &file, &line); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, `"spring"`) || !strings.Contains(reason, `"summer"`) ||
		!strings.Contains(reason, a+" line 3") || file != b || line != 2 {
		t.Errorf("conflict row = %q at %s:%d, want both campaign names and the owner's line at %s:2", reason, file, line, b)
	}
	if f.srv.Count() != 4 || f.srv.CountFor("id-1") != 1 {
		t.Errorf("%d requests, %d for id-1; want 4, one per message", f.srv.Count(), f.srv.CountFor("id-1"))
	}
	if n := count(t, f.db, `SELECT count(*) - count(DISTINCT message_id) FROM messages`); n != 0 {
		t.Errorf("messages holds %d duplicate IDs", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM rejected_rows WHERE file = ? AND line = 6`, a); n != 1 {
		t.Errorf("the empty ID on line 6 was not rejected")
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages WHERE message_id = 'id-1' AND campaign = 'spring' AND source_line = 2`); n != 1 {
		t.Errorf("id-1 not loaded once, trimmed, from its first line")
	}
	// A later run that names id-4 under another campaign is rejected against the stored owner.
	c := writeFile(t, dir, "c.csv", "message_id,campaign\nid-4,autumn\n")
	cfg.Inputs = []string{c}
	sum, err = ingest.Fetch(context.Background(), f.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rejected != 1 || sum.Requested != 0 {
		t.Errorf("summary = %+v, want 1 rejected, nothing requested", sum)
	}
	if n := count(t, f.db, `SELECT count(*) FROM messages WHERE message_id = 'id-4' AND campaign = 'summer'`); n != 1 {
		t.Errorf("id-4 changed campaign")
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
	var b strings.Builder
	b.WriteString("message_id,campaign\n")
	for i := range 20_000 {
		fmt.Fprintf(&b, "id-%05d,spring\n", i)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	cfg := f.config(t)
	cfg.Inputs = []string{"-"}
	cfg.LoadChunk = 1000
	// The interrupt arrives 200 kB into the 300 kB input, well past the reader's first
	// buffer: a dozen chunks are committed by then.
	cfg.Stdin = &cancelAfter{r: strings.NewReader(b.String()), n: 200_000, cancel: func() { cancel(errors.New("interrupt")) }}
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
	cfg.Stdin = strings.NewReader(b.String())
	if sum, err = ingest.Fetch(context.Background(), f.db, cfg); err != nil || sum.NewMessages != 20_000 || sum.Answered != 20_000 {
		t.Errorf("the next run = %+v, %v; want 20000 new messages answered", sum, err)
	}
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
