package webhook_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/webhook"
)

// FuzzParseBody checks that no body makes ParseBody panic, and that whatever it accepts
// is read back from the spool exactly as it was accepted.
func FuzzParseBody(f *testing.F) {
	for _, seed := range []string{
		`{"messageId":"abc123def456","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`,
		`[{"messageId":"a","deliverystatus":"scheduled","timestamp":"2025-01-23T12:30:00.5+02:00"},{"messageId":" b\u00e9 ","deliverystatus":"x","timestamp":"2025-01-23T10:30:00Z","cost":"1e-2","n":{"k":[1,"\""]}}]`,
		`{"MESSAGEID":"a","deliverystatus":"d","timestamp":"2025-01-23T10:30:00Z","messageId":"b"}`,
		`[[[[]]]]`, `{"messageId":"a\\"b"}`, "{\"messageId\":\"\xff\"}", `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	at := time.Date(2025, 1, 23, 10, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := webhook.ParseBody(body)
		if err != nil || len(events) == 0 {
			return
		}
		path := filepath.Join(dir, "events-20250123T10.ndjson")
		if err := os.WriteFile(path, webhook.AppendLines(nil, at, "192.0.2.1:1", events), 0o644); err != nil {
			t.Fatal(err)
		}
		var got []webhook.Event
		for rec, err := range webhook.ReadFile(context.Background(), path, webhook.Position{}) {
			if err != nil {
				t.Fatalf("an accepted body does not read back: %v\nbody %q", err, body)
			}
			got = append(got, rec.Event)
		}
		if diff := cmp.Diff(events, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("read back (-accepted +read):\n%s\nbody %q", diff, body)
		}
	})
}
