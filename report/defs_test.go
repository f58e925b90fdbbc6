package report_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/report"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDefsBuiltin(t *testing.T) {
	defs, err := report.Defs("")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
		if d.Source != report.Builtin {
			t.Errorf("%s: Source = %q, want builtin", d.Name, d.Source)
		}
		if d.Description == "" || strings.HasPrefix(d.Description, d.Name+":") || strings.HasPrefix(d.Description, "--") {
			t.Errorf("%s: Description = %q, want the text after %q", d.Name, d.Description, "-- "+d.Name+":")
		}
	}
	want := []string{"delivery", "cost", "fallback", "channels", "stuck", "settlement", "errors", "runs"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Defs(\"\") names (-want +got):\n%s", diff)
	}
	if got := defs[0].Description; got != "delivery status counts and delivery rate per campaign" {
		t.Errorf("delivery description = %q", got)
	}
	if diff := cmp.Diff(want[:3], report.DefaultNames()); diff != "" {
		t.Errorf("DefaultNames() (-want +got):\n%s", diff)
	}
}

func TestDefsExtraDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"per_file.sql": "-- per_file: messages per source file\n-- total: n\n" +
			"SELECT source_file, count(*) AS n FROM messages\n" +
			"WHERE len($campaigns) = 0 OR list_contains($campaigns, campaign)\n" +
			"GROUP BY source_file ORDER BY source_file;\n",
		// Replaces the builtin report of the same name.
		"delivery.sql": "-- my own delivery\nSELECT campaign, count(*) AS messages FROM messages GROUP BY ALL ORDER BY ALL",
		"notes.txt":    "not a report",
		"old.sql/x":    "a directory named like a report is skipped",
	})
	defs, err := report.Defs(dir)
	if err != nil {
		t.Fatal(err)
	}
	type brief struct{ Name, Description, Source, Total string }
	var got []brief
	for _, d := range defs {
		got = append(got, brief{d.Name, d.Description, d.Source, d.Total})
	}
	want := []brief{
		{"delivery", "my own delivery", filepath.Join(dir, "delivery.sql"), ""},
		{"cost", "messages, parts and exact cost per campaign and currency", report.Builtin, "messages parts cost@currency bill_amount@currency"},
		{"fallback", "how many messages listed, used and were delivered by a fallback, per campaign", report.Builtin, "messages with_fallback fallback_used fallback_delivered fallback_rate=fallback_used/messages"},
		{"channels", "messages per campaign, channel and channel status, from extendedStatuses", report.Builtin, ""},
		{"stuck", "messages still scheduled or processing, per campaign, by time since their first check", report.Builtin, "stuck scheduled processing age_under_1h age_1h_6h age_6h_24h age_over_24h given_up"},
		{"settlement", "how fast messages reach a final status, and how many checks that took, per campaign", report.Builtin, "messages settled pending given_up"},
		{"errors", "fetch errors by kind and rejected input rows by reason, per campaign", report.Builtin, "occurrences"},
		{"runs", "the 100 most recent fetch runs, newest first, with outcome and counts", report.Builtin, ""},
		{"per_file", "messages per source file", filepath.Join(dir, "per_file.sql"), "n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Defs(dir) (-want +got):\n%s", diff)
	}

	// The extra report runs with the same parameters as the builtin ones.
	db, _ := fixtureDB(t)
	sel, err := report.Select(defs, "per_file", "delivery")
	if err != nil {
		t.Fatal(err)
	}
	res, err := report.Run(context.Background(), db.DB, sel[0], report.Filter{Campaigns: []string{"summer", "quiet"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"source_file", "n"}, {"quiet.csv", "2"}, {"summer.csv", "4"}}, csvRows(t, res)); diff != "" {
		t.Errorf("per_file (-want +got):\n%s", diff)
	}
	res, err = report.Run(context.Background(), db.DB, sel[1], report.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Columns, ","); got != "campaign,messages" {
		t.Errorf("overridden delivery columns = %s, want campaign,messages", got)
	}
}

func TestDefsErrors(t *testing.T) {
	tests := []struct {
		name, file, body, want string
	}{
		{"bad name", "two words.sql", "SELECT 1", "may only hold"},
		{"only comments", "empty.sql", "-- empty: nothing\n", "no SQL"},
		{"bad total", "t.sql", "-- total: a=b\nSELECT 1 AS a", "want col=num/den"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{tt.file: tt.body})
			_, err := report.Defs(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Defs with %s = %v, want an error containing %q", tt.file, err, tt.want)
			}
		})
	}
	if _, err := report.Defs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Defs(missing dir) succeeded, want an error")
	}
	if _, err := report.Select(mustDefs(t), "delivery", "nope"); err == nil || !strings.Contains(err.Error(), `no report named "nope"`) {
		t.Errorf("Select(nope) = %v, want an error naming it", err)
	}
}

// TestRunRefuses checks what Run will not run: an unknown parameter (duckdb-go would bind
// it to another argument by position), several statements (duckdb-go would run all but the
// last while preparing) and a statement that is not a SELECT.
func TestRunRefuses(t *testing.T) {
	ctx := context.Background()
	db, _ := fixtureDB(t)
	tests := []struct {
		name, sql, want string
	}{
		{"unknown parameter", "SELECT campaign FROM messages WHERE campaign = $campaign", "unknown parameter $campaign"},
		{"positional parameter", "SELECT campaign FROM messages WHERE campaign = ?", "unknown parameter"},
		{"two statements", "DROP TABLE runs; SELECT 1", "a statement in it is not a query"},
		{"not a select", "DELETE FROM runs", "a statement in it is not a query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report.Run(ctx, db.DB, report.Def{Name: "bad", SQL: tt.sql}, report.Filter{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%q) = %v, want an error containing %q", tt.sql, err, tt.want)
			}
		})
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM runs").Scan(&n); err != nil || n != 3 {
		t.Errorf("runs after the refused reports: %d rows, %v; want 3 rows", n, err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range report.Formats {
		if got, err := report.ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	_, err := report.ParseFormat("xml")
	if err == nil || !strings.Contains(err.Error(), "table, csv, json, markdown") {
		t.Errorf("ParseFormat(xml) = %v, want an error naming the valid formats", err)
	}
}
