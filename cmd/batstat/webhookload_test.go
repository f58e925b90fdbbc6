package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batstat/batstat/webhook"
)

// spoolLine is one spool line of an event, as the receiver writes it.
func spoolLine(t *testing.T, id, status, ts string, cost string) string {
	t.Helper()
	raw := `{"messageId":"` + id + `","deliverystatus":"` + status + `","timestamp":"` + ts + `"`
	if cost != "" {
		raw += `,"cost":` + cost
	}
	ev, err := webhook.ParseEvent([]byte(raw + "}"))
	if err != nil {
		t.Fatal(err)
	}
	return string(webhook.AppendLines(nil, time.Date(2025, 1, 23, 10, 30, 5, 0, time.UTC), "203.0.113.7:5123", []webhook.Event{ev}))
}

// batstat webhook load: the events of a spool become status_checks rows with source
// 'webhook'; a second load adds nothing; a bad line and a torn last line are skipped and
// named by file:line; once the torn line is complete and more lines come, a third load adds
// just those. A delivered status is not undone by a processing stamped later, and events
// of IDs no campaign has loaded are kept and counted.
func TestWebhookLoadIdempotent(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(spool, "events-20250123T10.ndjson")
	lines := spoolLine(t, "m1", "delivered", "2025-01-23T10:30:00Z", "0.05") +
		spoolLine(t, "m1", "delivered", "2025-01-23T10:30:00Z", "0.05") + // the provider's duplicate
		"this is not an event\n" +
		spoolLine(t, "m1", "processing", "2025-01-23T10:30:09Z", "") + // out of order
		spoolLine(t, "m2", "processing", "2025-01-23T10:30:01.5+02:00", "")
	torn := spoolLine(t, "m3", "undeliverable", "2025-01-23T10:31:00Z", "0.02")
	if err := os.WriteFile(file, []byte(lines+torn[:20]), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "w.duckdb")
	r := runCLI(t, dir, "", "webhook", "load", "--db", db, spool)
	if r.code != 0 {
		t.Fatalf("webhook load = exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"events_read=4", "loaded=3", "duplicates=1", "unknown_ids=3", "skipped_lines=2", "torn_lines=1",
		file + ":3", file + ":6"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("webhook load stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	check := func(when string, rows int64) {
		t.Helper()
		d := openTestDB(t, db)
		if n := queryInt(t, d, `SELECT count(*) FROM status_checks WHERE source = 'webhook' AND received_at IS NOT NULL`); n != rows {
			t.Errorf("%s: %d pushed rows, want %d", when, n, rows)
		}
		if n := queryInt(t, d, `SELECT count(*) FROM status_latest WHERE message_id = 'm1' AND deliverystatus = 'delivered' AND cost = 0.05`); n != 1 {
			t.Errorf("%s: m1's latest is not delivered at 0.05", when)
		}
		d.Close()
	}
	check("first load", 3)
	r = runCLI(t, dir, "", "webhook", "load", "--db", db, spool)
	if r.code != 0 || !strings.Contains(r.stderr, "events_read=0") || !strings.Contains(r.stderr, "loaded=0") {
		t.Errorf("second load = exit %d, want 0 and nothing read:\n%s", r.code, r.stderr)
	}
	check("second load", 3)
	// The torn line completed, and one more: only they are read.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(torn[20:] + spoolLine(t, "m4", "delivered", "2025-01-23T10:32:00Z", "0.05"))
	f.Close()
	r = runCLI(t, dir, "", "webhook", "load", "--db", db, file)
	if r.code != 0 || !strings.Contains(r.stderr, "events_read=2") || !strings.Contains(r.stderr, "loaded=2") {
		t.Errorf("load of the grown spool = exit %d, want 0 and 2 read:\n%s", r.code, r.stderr)
	}
	check("third load", 5)
	d := openTestDB(t, db)
	if n := queryInt(t, d, `SELECT count(*) FROM status_checks WHERE message_id = 'm3' AND checked_at = '2025-01-23 10:31:00+00' AND cost = 0.02`); n != 1 {
		t.Errorf("the completed torn line: %d rows, want 1", n)
	}
	d.Close()

	// A file cut since its last load cannot be resumed: exit 1, saying how to load it; with
	// --from-start it is read whole again, and the events stored already add nothing.
	all, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := len(lines) + len(torn) - 1
	if err := os.WriteFile(file, all[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, dir, "", "webhook", "load", "--db", db, file)
	if r.code != 1 || !strings.Contains(r.stderr, "--from-start") {
		t.Errorf("load of a cut spool = exit %d, want 1 naming --from-start:\n%s", r.code, r.stderr)
	}
	r = runCLI(t, dir, "", "webhook", "load", "--db", db, "--from-start", file)
	if r.code != 0 || !strings.Contains(r.stderr, "loaded=0") {
		t.Errorf("load --from-start of a cut spool = exit %d, want 0 and nothing new:\n%s", r.code, r.stderr)
	}
	check("load from the start", 5)
	if r := runCLI(t, dir, "", "webhook", "load", "--db", db, file); r.code != 0 {
		t.Errorf("a load after --from-start = exit %d, want 0 (resumed from the new position):\n%s", r.code, r.stderr)
	}

	// Exit statuses: no spool given, one that does not exist.
	if r := runCLI(t, dir, "", "webhook", "load", "--db", db); r.code != 2 {
		t.Errorf("webhook load without a spool = exit %d, want 2", r.code)
	}
	if r := runCLI(t, dir, "", "webhook", "load", "--db", db, filepath.Join(dir, "nope")); r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("webhook load of a missing spool = exit %d, want 1 naming it: %s", r.code, r.stderr)
	}
	// fetch --webhook-spool: a spool that is not there is an unreadable input, found before
	// the database is opened.
	ids := writeIDs(t, dir, "camp.csv", 3)
	fresh := filepath.Join(dir, "fresh.duckdb")
	if r := runCLI(t, dir, "", "fetch", "--db", fresh, "--api-key", "k", "--api-url", "http://127.0.0.1:1",
		"--webhook-spool", filepath.Join(dir, "nope"), ids); r.code != 1 || !strings.Contains(r.stderr, "--webhook-spool") {
		t.Errorf("fetch --webhook-spool of a missing spool = exit %d, want 1 naming the flag: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Errorf("fetch with a missing spool created the database")
	}
}
