package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

var t0 = time.Date(2025, 1, 23, 10, 30, 0, 0, time.UTC)

func pushed(id, status string, at time.Duration, cost *smsbat.Money) store.Pushed {
	return store.Pushed{MessageID: id, Status: status, At: t0.Add(at), ReceivedAt: t0.Add(at + time.Second), Cost: cost,
		Raw: []byte(`{"messageId":"` + id + `","deliverystatus":"` + status + `"}`)}
}

// pushAll stores events in one batch with the position pos of file f.
func pushAll(t *testing.T, db *store.DB, events ...store.Pushed) store.PushCounts {
	t.Helper()
	ctx := context.Background()
	p, err := db.StartPushLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range events {
		if err := p.Add(&events[i]); err != nil {
			t.Fatal(err)
		}
	}
	p.SetPosition("/spool/events-20250123T10.ndjson", store.SpoolPosition{Offset: int64(100 * len(events)), Line: int64(len(events))})
	c, err := p.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openPushDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func latestOf(t *testing.T, db *store.DB, id string) string {
	t.Helper()
	var status, source string
	var n int
	if err := db.QueryRow(`SELECT any_value(deliverystatus), any_value(source), count(*) FROM status_latest WHERE message_id = $1`, id).
		Scan(&status, &source, &n); err != nil || n != 1 {
		t.Fatalf("status_latest of %s: %d rows, %v", id, n, err)
	}
	return status + "/" + source
}

// Events arrive out of order: "delivered", then a "processing" stamped later (the
// provider's retry of an old delivery) keeps delivered as the latest answer; a terminal
// status replaces a non-terminal one stamped later; both are kept in the history.
func TestPushOutOfOrderKeepsTerminal(t *testing.T) {
	db := openPushDB(t)
	cost := smsbat.Money(50000)
	pushAll(t, db, pushed("a", "delivered", 0, &cost))
	pushAll(t, db, pushed("a", "processing", 5*time.Second, nil))
	if got := latestOf(t, db, "a"); got != "delivered/webhook" {
		t.Errorf("latest of a after delivered then a later processing = %s, want delivered/webhook", got)
	}
	// In one batch, in either order.
	pushAll(t, db, pushed("b", "processing", 9*time.Second, nil), pushed("b", "undeliverable", 2*time.Second, nil))
	if got := latestOf(t, db, "b"); got != "undeliverable/webhook" {
		t.Errorf("latest of b = %s, want undeliverable/webhook", got)
	}
	// Non-terminal answers: the newest wins, whatever order they come in.
	pushAll(t, db, pushed("c", "processing", 3*time.Second, nil))
	pushAll(t, db, pushed("c", "scheduled", 0, nil))
	if got := latestOf(t, db, "c"); got != "processing/webhook" {
		t.Errorf("latest of c = %s, want processing/webhook", got)
	}
	var history int
	if err := db.QueryRow(`SELECT count(*) FROM status_checks WHERE source = 'webhook' AND run_id IS NULL AND http_status IS NULL`).Scan(&history); err != nil || history != 6 {
		t.Errorf("pushed rows in status_checks = %d (%v), want 6", history, err)
	}
	var c string
	if err := db.QueryRow(`SELECT cost::VARCHAR || ' ' || raw || ' ' || received_at::VARCHAR FROM status_checks WHERE message_id = 'a' AND deliverystatus = 'delivered'`).Scan(&c); err != nil ||
		c != `0.050000 {"messageId":"a","deliverystatus":"delivered"} 2025-01-23 10:30:01+00` {
		t.Errorf("pushed row = %q (%v)", c, err)
	}
}

// A poll that answers "processing" after a pushed "delivered" (the API lagging the push)
// is stored, but delivered stays the latest; a poll that answers a terminal status
// replaces a pushed non-terminal one.
func TestPollAfterPushKeepsTerminal(t *testing.T) {
	db := openPushDB(t)
	ctx := context.Background()
	pushAll(t, db, pushed("a", "delivered", 0, nil), pushed("b", "processing", 0, nil))
	run, err := db.StartRun(ctx, store.RunStart{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.NewBatch(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for id, status := range map[string]string{"a": "processing", "b": "delivered"} {
		if err := b.AddAnswer(&store.Answer{MessageID: id, At: t0.Add(time.Minute), HTTPStatus: 200, Attempts: 1,
			Status: &smsbat.Status{DeliveryStatus: status}, Replaces: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, store.RunTotals{}); err != nil {
		t.Fatal(err)
	}
	if got := latestOf(t, db, "a"); got != "delivered/webhook" {
		t.Errorf("latest of a = %s, want delivered/webhook", got)
	}
	if got := latestOf(t, db, "b"); got != "delivered/poll" {
		t.Errorf("latest of b = %s, want delivered/poll", got)
	}
}

// The same events loaded twice, or twice in one load (the provider's duplicate
// deliveries), are stored once; events of IDs no campaign has loaded are stored and
// counted, and join their campaign once its list is loaded; positions are recorded.
func TestPushDuplicatesAndUnknownIDs(t *testing.T) {
	db := openPushDB(t)
	ctx := context.Background()
	ev := []store.Pushed{pushed("x", "delivered", 0, nil), pushed("x", "delivered", 0, nil), pushed("y", "processing", time.Second, nil)}
	if c := pushAll(t, db, ev...); c != (store.PushCounts{Loaded: 2, Duplicates: 1, Unknown: 2}) {
		t.Errorf("first load = %+v, want 2 loaded, 1 duplicate, 2 unknown", c)
	}
	if c := pushAll(t, db, ev...); c != (store.PushCounts{Duplicates: 3}) {
		t.Errorf("second load = %+v, want 3 duplicates", c)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM status_checks`).Scan(&n); err != nil || n != 2 {
		t.Errorf("status_checks rows = %d (%v), want 2", n, err)
	}
	pos, err := db.SpoolPositions(ctx)
	if err != nil || pos["/spool/events-20250123T10.ndjson"] != (store.SpoolPosition{Offset: 300, Line: 3}) {
		t.Errorf("positions = %v (%v)", pos, err)
	}
	// The campaign's list is loaded now: x is terminal, so it is not asked.
	_, counts, ask := load(t, db, []row{msg("c.csv", 2, "x", "c"), msg("c.csv", 3, "y", "c"), msg("c.csv", 4, "z", "c")}, 10)
	if counts.ToAsk != 2 || len(ask) != 2 || ask[0] != "y" || ask[1] != "z" {
		t.Errorf("to ask after the push = %d %v, want y z", counts.ToAsk, ask)
	}
	var got string
	if err := db.QueryRow(`SELECT string_agg(message_id || ':' || coalesce(deliverystatus, '-'), ',' ORDER BY message_id) FROM message_status`).Scan(&got); err != nil ||
		got != "x:delivered,y:processing,z:-" {
		t.Errorf("message_status = %q (%v)", got, err)
	}
	if c := pushAll(t, db, pushed("z", "delivered", 0, nil)); c != (store.PushCounts{Loaded: 1}) {
		t.Errorf("a push for a loaded ID = %+v, want 1 loaded, none unknown", c)
	}
}
