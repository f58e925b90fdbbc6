package ingest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/smsbat/smsbattest"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDeduplicatesAndRejectsCampaignConflicts(t *testing.T) {
	f := newFixture(t, smsbattest.Options{}, 0)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.csv", "message_id,campaign\n  id-1 ,spring\nid-2,spring\nid-1,spring\nid-3,spring\n,spring\n")
	b := writeFile(t, dir, "b.csv", "message_id,campaign\nid-2,summer\nid-4,summer\n")
	cfg := f.config(t)
	cfg.Inputs = []string{a, b}
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
	if !strings.Contains(reason, `"spring"`) || !strings.Contains(reason, `"summer"`) || file != b || line != 2 {
		t.Errorf("conflict row = %q at %s:%d, want both campaign names at %s:2", reason, file, line, b)
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
	f := newFixture(t, smsbattest.Options{}, 0)
	in := writeFile(t, t.TempDir(), "a.csv", "message_id\nid-1\nid\x07bad\nid-3\n")
	cfg := f.config(t)
	cfg.Inputs = []string{in}
	cfg.Strict = true
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
