package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

func openTemp(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "m.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The database's is_terminal says what smsbat.IsTerminal says, for every status the API
// knows and some it does not; a message without an answer is not terminal.
func TestIsTerminalMacroAgreesWithGo(t *testing.T) {
	db := openTemp(t)
	statuses := append(smsbat.TerminalStatuses(), smsbat.StatusScheduled, smsbat.StatusProcessing,
		smsbat.StatusNotFound, "read", "Delivered", "it's", "")
	for _, s := range statuses {
		var got bool
		if err := db.QueryRow(`SELECT is_terminal($1)`, s).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := smsbat.IsTerminal(s); got != want {
			t.Errorf("is_terminal(%q) = %v, want %v as smsbat.IsTerminal", s, got, want)
		}
	}
	var null sql.NullBool
	if err := db.QueryRow(`SELECT is_terminal(NULL)`).Scan(&null); err != nil || !null.Valid || null.Bool {
		t.Errorf("is_terminal(NULL) = %v (%v), want false", null, err)
	}
}

// The report filter: a campaign list selects its campaigns (none or NULL: all), a period
// is since <= t < until with NULL bounds open, and a message's time is its sent_at when
// that parses, else when it was first loaded.
func TestReportFilterMacros(t *testing.T) {
	db := openTemp(t)
	loaded := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name      string
		sentAt    any // sent_at as the CSV gave it
		campaigns any // []string or nil
		since     any
		until     any
		want      bool
	}{
		{"all campaigns, no bounds", nil, []string{}, nil, nil, true},
		{"NULL campaigns", nil, nil, nil, nil, true},
		{"named campaign", nil, []string{"b", "spring"}, nil, nil, true},
		{"another campaign", nil, []string{"summer"}, nil, nil, false},
		{"loaded at since", nil, []string{}, loaded, nil, true},
		{"loaded before since", nil, []string{}, day(2), nil, false},
		{"until is exclusive", nil, []string{}, nil, loaded, false},
		{"sent_at wins", "2026-03-05T10:00:00Z", []string{}, day(5), day(6), true},
		{"sent_at outside", "2026-03-05T10:00:00Z", []string{}, nil, day(5), false},
		{"unparsable sent_at", "yesterday", []string{}, loaded, day(2), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bool
			if err := db.QueryRow(`SELECT in_campaigns('spring', $1)
				AND in_period(message_time($2, $3::TIMESTAMPTZ), $4, $5)`,
				tt.campaigns, tt.sentAt, loaded, tt.since, tt.until).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if v, ok, err := db.Meta(ctx, "demo"); err != nil || ok {
		t.Errorf("Meta(demo) of a new file = %q, %v, %v; want absent", v, ok, err)
	}
	for _, v := range []string{"true", "again"} {
		if err := db.SetMeta(ctx, "demo", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := db.Meta(ctx, "demo"); err != nil || !ok || got != v {
			t.Errorf("Meta(demo) = %q, %v, %v; want %q", got, ok, err, v)
		}
	}
}
