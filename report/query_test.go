package report_test

import (
	"context"
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

// readOnlyFixture writes the fixture to a file, closes it (checkpointing it) and reopens
// it read-only, as batstat query does. It returns the database and the file's checksum.
func readOnlyFixture(t *testing.T) (*store.DB, string, [32]byte) {
	t.Helper()
	rw, path := fixtureDB(t)
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, path)
	ro, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return ro, path, sum
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestQueryReadOnly(t *testing.T) {
	ctx := context.Background()
	ro, path, before := readOnlyFixture(t)
	count := func() [][]string {
		res, err := report.Query(ctx, ro.DB, `SELECT
			(SELECT count(*) FROM messages) AS messages,
			(SELECT count(*) FROM status_checks) AS checks,
			(SELECT count(*) FROM runs) AS runs,
			(SELECT string_agg(campaign, ',' ORDER BY message_id) FROM messages) AS campaigns`)
		if err != nil {
			t.Fatal(err)
		}
		return csvRows(t, res)
	}
	want := count()

	writes := []string{
		"INSERT INTO messages (message_id, campaign, first_loaded_at) VALUES ('x', 'x', now())",
		"CREATE TABLE scratch (a INTEGER)",
		"DROP TABLE messages",
		"UPDATE messages SET campaign = 'changed'",
		"DELETE FROM status_checks",
		"SELECT 1; DROP TABLE runs",
	}
	for _, q := range writes {
		_, err := report.Query(ctx, ro.DB, q)
		if err == nil {
			t.Errorf("Query(%q) on a read-only database succeeded", q)
			continue
		}
		if !strings.HasPrefix(err.Error(), "query: the database is opened read-only; batstat query cannot change it: ") {
			t.Errorf("Query(%q) error = %q, want the read-only explanation", q, err)
		}
	}

	if diff := cmp.Diff(want, count()); diff != "" {
		t.Errorf("contents changed (-before +after):\n%s", diff)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Error("the database file changed while it was open read-only")
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	ro, _, _ := readOnlyFixture(t)
	res, err := report.Query(ctx, ro.DB, `SELECT message_id, cost, checked_at, fallbacks, extended_statuses
		FROM message_status WHERE message_id IN ('sp-08', 'sp-07') ORDER BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "query" {
		t.Errorf("Name = %q, want query", res.Name)
	}
	want := []string{"VARCHAR", "DECIMAL(18,6)", "TIMESTAMPTZ", "JSON", "JSON"}
	if diff := cmp.Diff(want, res.Types); diff != "" {
		t.Errorf("Types (-want +got):\n%s", diff)
	}
	var buf strings.Builder
	if err := report.Render(&buf, report.FormatJSON, []*report.Result{res}); err != nil {
		t.Fatal(err)
	}
	wantJSON := `[
  {
    "message_id": "sp-07",
    "cost": null,
    "checked_at": null,
    "fallbacks": null,
    "extended_statuses": null
  },
  {
    "message_id": "sp-08",
    "cost": 0.123456,
    "checked_at": "2025-03-10T10:00:10Z",
    "fallbacks": [
      {
        "status": "delivered",
        "type": "sms"
      },
      {
        "status": "delivered",
        "type": "rcs"
      }
    ],
    "extended_statuses": {
      "sms": "delivered",
      "viber": "expired"
    }
  }
]
`
	if diff := cmp.Diff(wantJSON, buf.String()); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}

	if _, err := report.Query(ctx, ro.DB, "SELECT nope FROM messages"); err == nil || !strings.HasPrefix(err.Error(), "query: ") {
		t.Errorf("Query(bad column) = %v, want a query: error", err)
	}
}
