package report_test

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

const goldenDir = "../testdata/report"

// asOf is the time the fixture's ages are measured at (fixture.sql says why).
var asOf = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// giveUpAfter is the age past which the hand-computed reports count a message given up:
// spring's messages, sent 42 h before asOf, are; quiet's, first loaded 2 h before, are not.
const giveUpAfter = 36 * time.Hour

// asOfFilter is the filter of the hand-computed reports and the goldens.
var asOfFilter = report.Filter{AsOf: asOf, GiveUpAfter: giveUpAfter}

// fixtureDB creates a database file in a temporary directory, loads fixture.sql into it
// and returns it open read-write, with its path.
func fixtureDB(t *testing.T) (*store.DB, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "batstat.duckdb")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fixture, err := os.ReadFile(filepath.Join(goldenDir, "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, string(fixture)); err != nil {
		t.Fatalf("load fixture: %v", err)
	}
	return db, path
}

func builtin(t *testing.T, name string) report.Def {
	t.Helper()
	defs, err := report.Defs("")
	if err != nil {
		t.Fatal(err)
	}
	sel, err := report.Select(defs, name)
	if err != nil {
		t.Fatal(err)
	}
	return sel[0]
}

func run(t *testing.T, db *sql.DB, name string, f report.Filter) *report.Result {
	t.Helper()
	res, err := report.Run(context.Background(), db, builtin(t, name), f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// csvRows renders res as csv and splits it back into cells: the text every format starts
// from, and what the hand-computed expectations below are written in.
func csvRows(t *testing.T, res *report.Result) [][]string {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Render(&buf, report.FormatCSV, []*report.Result{res}); err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for line := range strings.Lines(buf.String()) {
		// No fixture value holds a comma or a quote, so a plain split is exact.
		rows = append(rows, strings.Split(strings.TrimRight(line, "\n"), ","))
	}
	return rows
}

// handComputed holds every report's expected output on the fixture, worked out by hand
// from fixture.sql (as_of 2025-03-10 12:00 UTC, no filter). The goldens must agree.
var handComputed = map[string][][]string{
	// spring: 10 = delivered 4 (sp-01 sp-02 sp-08 sp-10) + undeliverable 1 (sp-03) +
	// scheduled 1 (sp-09) + processing 1 (sp-04) + not_found 1 (sp-05) + other 1 (sp-06,
	// queued_for_review) + unchecked 1 (sp-07); rate 4/10. summer 3/4. quiet 0/2.
	"delivery": {
		{"campaign", "messages", "delivered", "undeliverable", "permanenterror", "scheduled", "processing", "not_found", "other", "unchecked", "delivery_rate"},
		{"quiet", "2", "0", "0", "0", "0", "0", "0", "0", "2", "0"},
		{"spring", "10", "4", "1", "0", "1", "1", "1", "1", "1", "0.4"},
		{"summer", "4", "3", "0", "1", "0", "0", "0", "0", "0", "0.75"},
	},
	// spring "": sp-04 sp-05 sp-06 sp-07 sp-09 (sp-06 has cost 0.02 and 1 part, no
	// currency); EUR: sp-02 (rateCurrency only); UAH: sp-01 sp-03 sp-08 (billCurrency wins
	// over its rateCurrency EUR) sp-10 = 0.05+0.05+0.123456+0.05 = 0.273456, bill
	// 0.05+0.05+0.1+0.05 = 0.25, parts 1+1+3+1, delivered 3 -> 0.091152. sp-01's older
	// EUR 9.99 answer does not count. summer UAH 0.04+0.04+0.05+0 over 3 delivered =
	// 0.043333 (rounded). Rows per campaign add up to its messages: 5+1+4 = 10.
	"cost": {
		{"campaign", "currency", "messages", "parts", "cost", "bill_amount", "cost_per_delivered"},
		{"quiet", "", "2", "0", "0.000000", "0.000000", ""},
		{"spring", "", "5", "1", "0.020000", "0.000000", ""},
		{"spring", "EUR", "1", "2", "0.010000", "0.000000", "0.010000"},
		{"spring", "UAH", "4", "6", "0.273456", "0.250000", "0.091152"},
		{"summer", "UAH", "4", "3", "0.130000", "0.130000", "0.043333"},
	},
	// spring with_fallback: sp-01 sp-02 sp-08 sp-10 (sp-03's latest list is empty);
	// used: sp-02 sp-08 (sp-01 and sp-10 only not_used); delivered: sp-02 sp-08 (sp-08
	// lists two delivered fallbacks, counted once). rate 2/10.
	"fallback": {
		{"campaign", "messages", "with_fallback", "fallback_used", "fallback_delivered", "fallback_rate"},
		{"quiet", "2", "0", "0", "0", "0"},
		{"spring", "10", "4", "2", "2", "0.2"},
		{"summer", "4", "0", "0", "0", "0"},
	},
	// From the latest extended statuses: sp-01 viber delivered, sms not_used; sp-02 viber
	// undeliverable, sms delivered; sp-08 viber expired, sms delivered; sp-10 viber
	// delivered; su-1 sms delivered. sp-03's older {"sms":"delivered"} does not count.
	"channels": {
		{"campaign", "channel", "status", "messages"},
		{"spring", "sms", "delivered", "2"},
		{"spring", "sms", "not_used", "1"},
		{"spring", "viber", "delivered", "2"},
		{"spring", "viber", "expired", "1"},
		{"spring", "viber", "undeliverable", "1"},
		{"summer", "sms", "delivered", "1"},
	},
	// sp-04 processing, first checked 2025-03-09 06:00 = 30 h before as_of; sp-09
	// scheduled, first checked 2025-03-10 10:00 = 2 h before. Both were sent 42 h before
	// as_of, more than the 36 h given: given up.
	"stuck": {
		{"campaign", "stuck", "scheduled", "processing", "age_under_1h", "age_1h_6h", "age_6h_24h", "age_over_24h", "oldest_first_check", "given_up"},
		{"spring", "2", "1", "1", "0", "1", "0", "1", "2025-03-09T06:00:00Z", "2"},
	},
	// spring, sent 2025-03-08 18:00: sp-01 sp-02 sp-03 (undeliverable) sp-08 sp-10 first
	// terminal at 2025-03-10 10:00:10 = 40 h 10 s = 144010 s later; the other 5 (processing,
	// not_found, an unknown status, never answered, scheduled) are 42 h old at as_of, past
	// 36 h: given up. Checks: sp-01, sp-03, sp-04 twice, 6 others once = 12 over 10.
	// summer, no sent_at, first loaded 05:59:30, all 4 terminal at 06:02:00 (permanenterror
	// counts): 150 s; 4 checks. quiet: sent_at not a timestamp, loaded 2 h before as_of,
	// never answered: pending, no settle times, no checks.
	"settlement": {
		{"campaign", "messages", "settled", "pending", "given_up", "p50_settle_s", "p90_settle_s", "p99_settle_s", "max_settle_s", "checks_per_message"},
		{"quiet", "2", "0", "2", "0", "", "", "", "", "0"},
		{"spring", "10", "5", "0", "5", "144010", "144010", "144010", "144010", "1.2"},
		{"summer", "4", "4", "0", "0", "150", "150", "150", "150", "1"},
	},
	"errors": {
		{"campaign", "source", "reason", "occurrences", "messages", "first_at", "last_at"},
		{"", "rejected_rows", "no campaign", "1", "0", "2025-03-10T09:59:00Z", "2025-03-10T09:59:00Z"},
		{"quiet", "fetch_errors", "network", "2", "2", "2025-03-10T10:01:10Z", "2025-03-10T10:01:20Z"},
		{"quiet", "rejected_rows", "already in campaign spring", "1", "1", "2025-03-10T09:59:00Z", "2025-03-10T09:59:00Z"},
		{"quiet", "rejected_rows", "empty id", "1", "0", "2025-03-10T09:59:00Z", "2025-03-10T09:59:00Z"},
		{"spring", "fetch_errors", "rate_limited", "1", "1", "2025-03-09T06:04:00Z", "2025-03-09T06:04:00Z"},
		{"spring", "fetch_errors", "server_error", "1", "1", "2025-03-10T10:01:00Z", "2025-03-10T10:01:00Z"},
		// Two rows rejected as duplicates of two lines: one reason.
		{"spring", "rejected_rows", "duplicate", "2", "2", "2025-03-09T05:59:00Z", "2025-03-09T05:59:00Z"},
		{"spring", "rejected_rows", "empty id", "1", "0", "2025-03-09T05:59:00Z", "2025-03-09T05:59:00Z"},
	},
	"runs": {
		{"run_id", "started_at", "finished_at", "duration_s", "outcome", "inputs", "refresh", "ids_read", "rejected", "requested", "answered", "not_found", "failed", "retries", "rate_limited", "error"},
		{"3", "2025-03-10T11:00:00Z", "", "", "crashed", "summer.csv", "pending", "0", "0", "0", "0", "0", "0", "0", "0", ""},
		{"2", "2025-03-10T10:00:00Z", "2025-03-10T10:02:30Z", "150", "partial", "spring.csv quiet.csv", "pending", "12", "1", "10", "7", "1", "3", "6", "0", ""},
		{"1", "2025-03-09T06:00:00Z", "2025-03-09T06:05:00Z", "300", "partial", "spring.csv summer.csv", "pending", "14", "2", "14", "13", "0", "1", "3", "2", ""},
	},
}

func TestHandComputed(t *testing.T) {
	db, _ := fixtureDB(t)
	defs, err := report.Defs("")
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != len(handComputed) {
		t.Errorf("Defs() has %d reports, the test expects %d: add the new one here", len(defs), len(handComputed))
	}
	for _, d := range defs {
		t.Run(d.Name, func(t *testing.T) {
			res, err := report.Run(context.Background(), db.DB, d, asOfFilter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(handComputed[d.Name], csvRows(t, res)); diff != "" {
				t.Errorf("Run(%s) mismatch (-want +got):\n%s", d.Name, diff)
			}
		})
	}
}

// TestKeyFigures asserts the headline numbers on the scanned values themselves, not on
// their text.
func TestKeyFigures(t *testing.T) {
	db, _ := fixtureDB(t)
	res := run(t, db.DB, "delivery", report.Filter{})
	rates := map[string]float64{}
	for _, row := range res.Rows {
		rates[row[0].(string)] = row[len(row)-1].(float64)
	}
	for campaign, want := range map[string]float64{"spring": 0.4, "summer": 0.75, "quiet": 0} {
		if got := rates[campaign]; got != want {
			t.Errorf("delivery_rate of %s = %v, want %v", campaign, got, want)
		}
	}

	// The cost rows of each campaign add up to its messages.
	cost := run(t, db.DB, "cost", report.Filter{})
	perCampaign := map[string]int64{}
	for _, row := range cost.Rows {
		perCampaign[row[0].(string)] += row[2].(int64)
	}
	if diff := cmp.Diff(map[string]int64{"spring": 10, "summer": 4, "quiet": 2}, perCampaign); diff != "" {
		t.Errorf("cost messages per campaign (-want +got):\n%s", diff)
	}
	if got := cost.Types[4]; got != "DECIMAL(38,6)" {
		t.Errorf("cost column type = %s, want DECIMAL(38,6)", got)
	}
}

func TestTotals(t *testing.T) {
	db, _ := fixtureDB(t)
	tests := []struct {
		report string
		filter report.Filter
		want   string // the TOTAL line of the table output
	}{
		// 7/16 delivered overall.
		{"delivery", report.Filter{}, "| TOTAL    |       16 |         7 |             1 |              1 |         1 |          1 |         1 |     1 |         3 |        0.4375 |"},
		// cost is in three currencies: blank; bill_amount is non-zero in UAH rows only.
		{"cost", report.Filter{}, "| TOTAL    |          |       16 |    12 |          |    0.380000 |                    |"},
		{"cost", report.Filter{Campaigns: []string{"summer"}}, "| TOTAL    |          |        4 |     3 | 0.130000 |    0.130000 |                    |"},
		{"fallback", report.Filter{}, "| TOTAL    |       16 |             4 |             2 |                  2 |         0.125 |"},
		// Nothing matches: zeros, and a rate of 0 rather than a division by zero.
		{"delivery", report.Filter{Campaigns: []string{"nope"}}, "| TOTAL    |        0 |         0 |             0 |              0 |         0 |          0 |         0 |     0 |         0 |             0 |"},
	}
	for _, tt := range tests {
		res := run(t, db.DB, tt.report, tt.filter)
		var buf bytes.Buffer
		if err := report.Render(&buf, report.FormatTable, []*report.Result{res}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if got := lines[len(lines)-2]; got != tt.want {
			t.Errorf("%s %+v: TOTAL line\n got %s\nwant %s\ntable:\n%s", tt.report, tt.filter, got, tt.want, buf.String())
		}
	}
}

func TestGolden(t *testing.T) {
	db, _ := fixtureDB(t)
	defs, err := report.Defs("")
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]*report.Result{}
	for _, d := range defs {
		res, err := report.Run(context.Background(), db.DB, d, asOfFilter)
		if err != nil {
			t.Fatal(err)
		}
		results[d.Name] = res
	}
	var defaults []*report.Result
	for _, n := range report.DefaultNames() {
		defaults = append(defaults, results[n])
	}

	check := func(t *testing.T, file string, rs []*report.Result, format report.Format) {
		var buf bytes.Buffer
		if err := report.Render(&buf, format, rs); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(goldenDir, file)
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./report -run TestGolden -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), buf.String()); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
		}
	}
	for _, format := range report.Formats {
		for _, d := range defs {
			t.Run(d.Name+"."+string(format), func(t *testing.T) {
				check(t, d.Name+"."+string(format), []*report.Result{results[d.Name]}, format)
			})
		}
		if format == report.FormatCSV {
			// A csv file holds one table: several results are refused.
			if err := report.Render(io.Discard, format, defaults); err == nil {
				t.Errorf("Render(csv) of %d results = nil, want an error", len(defaults))
			}
			continue
		}
		// The default set, to pin the layout of several reports in one output.
		t.Run("defaults."+string(format), func(t *testing.T) {
			check(t, "defaults."+string(format), defaults, format)
		})
	}
}

func TestFilters(t *testing.T) {
	db, _ := fixtureDB(t)
	day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		report string
		filter report.Filter
		want   []string // first column of each row
	}{
		{"one campaign", "delivery", report.Filter{Campaigns: []string{"summer"}}, []string{"summer"}},
		{"two campaigns", "delivery", report.Filter{Campaigns: []string{"summer", "quiet"}}, []string{"quiet", "summer"}},
		{"unknown campaign", "delivery", report.Filter{Campaigns: []string{"winter"}}, nil},
		{"names are exact", "delivery", report.Filter{Campaigns: []string{"Spring", "spring "}}, nil},
		// spring was sent on 03-08; summer has no sent_at and was loaded on 03-09; quiet's
		// sent_at is not a timestamp, so its load time (03-10) counts.
		{"since", "delivery", report.Filter{Since: day(9)}, []string{"quiet", "summer"}},
		{"until", "delivery", report.Filter{Until: day(10)}, []string{"spring", "summer"}},
		{"since and until", "cost", report.Filter{Since: day(9), Until: day(10)}, []string{"summer"}},
		{"until is exclusive", "delivery", report.Filter{Until: time.Date(2025, 3, 9, 5, 59, 30, 0, time.UTC)}, []string{"spring"}},
		{"since in another zone", "delivery", report.Filter{Since: time.Date(2025, 3, 9, 7, 59, 0, 0, time.FixedZone("EET", 2*3600))}, []string{"quiet", "summer"}},
		{"stuck by campaign", "stuck", report.Filter{Campaigns: []string{"summer"}, AsOf: asOf}, nil},
		{"errors since", "errors", report.Filter{Since: day(10)}, []string{"", "quiet", "quiet", "quiet", "spring"}},
		{"errors of a campaign", "errors", report.Filter{Campaigns: []string{"quiet"}}, []string{"quiet", "quiet", "quiet"}},
		{"runs since", "runs", report.Filter{Since: day(10)}, []string{"3", "2"}},
		{"runs of a campaign", "runs", report.Filter{Campaigns: []string{"quiet"}}, []string{"2"}},
		{"runs of summer", "runs", report.Filter{Campaigns: []string{"summer"}}, []string{"1"}},
		{"channels of summer", "channels", report.Filter{Campaigns: []string{"summer"}}, []string{"summer"}},
		{"fallback until", "fallback", report.Filter{Until: day(9)}, []string{"spring"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, db.DB, tt.report, tt.filter)
			var got []string
			for _, row := range csvRows(t, res)[1:] {
				got = append(got, row[0])
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s with %+v: first column (-want +got):\n%s", tt.report, tt.filter, diff)
			}
		})
	}
}

// TestHostileCampaign shows that a campaign name is bound as a value: SQL in it is neither
// run nor able to widen the match.
func TestHostileCampaign(t *testing.T) {
	ctx := context.Background()
	db, _ := fixtureDB(t)
	hostile := "'; drop table messages; --"
	for _, d := range mustDefs(t) {
		res, err := report.Run(ctx, db.DB, d, report.Filter{Campaigns: []string{hostile}})
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if len(res.Rows) != 0 {
			t.Errorf("%s with campaign %q: %d rows, want 0", d.Name, hostile, len(res.Rows))
		}
	}

	// A campaign of exactly that name is reported, alone.
	if _, err := db.ExecContext(ctx, `INSERT INTO messages (message_id, campaign, first_loaded_at)
		VALUES ('h-1', $1, TIMESTAMPTZ '2025-03-10 00:00:00+00')`, hostile); err != nil {
		t.Fatal(err)
	}
	res := run(t, db.DB, "delivery", report.Filter{Campaigns: []string{hostile}})
	if len(res.Rows) != 1 || res.Rows[0][0] != hostile || res.Rows[0][1] != int64(1) {
		t.Errorf("delivery of campaign %q = %v, want one row with 1 message", hostile, res.Rows)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&n); err != nil {
		t.Fatalf("messages after the hostile filter: %v", err)
	}
	if n != 17 {
		t.Errorf("messages has %d rows, want 17", n)
	}
}

func mustDefs(t *testing.T) []report.Def {
	t.Helper()
	defs, err := report.Defs("")
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// The settlement report's times on messages that settle at different moments: the first
// terminal answer counts (not a later one), an unparseable sent time falls back to the
// load time, one before the sent time counts as 0, and a message without a terminal
// answer is pending until it is older than the give-up age, then given up.
func TestSettlementTimes(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Sent 10:00:00 but t-8 (10:01:00), t-5 (sent_at not a timestamp) and t-7 (none):
	// loaded 10:00:30.
	if _, err := db.ExecContext(ctx, `
		INSERT INTO messages (message_id, campaign, first_loaded_at, sent_at) VALUES
		    ('t-1', 'tail', '2025-03-10 10:00:30+00', '2025-03-10 10:00:00+00'),
		    ('t-2', 'tail', '2025-03-10 10:00:30+00', '2025-03-10 10:00:00+00'),
		    ('t-3', 'tail', '2025-03-10 10:00:30+00', '2025-03-10 10:00:00+00'),
		    ('t-4', 'tail', '2025-03-10 10:00:30+00', '2025-03-10 10:00:00+00'),
		    ('t-5', 'tail', '2025-03-10 10:00:30+00', 'soon'),
		    ('t-6', 'tail', '2025-03-10 10:00:30+00', '2025-03-10 10:00:00+00'),
		    ('t-7', 'tail', '2025-03-10 10:00:30+00', NULL),
		    ('t-8', 'tail', '2025-03-10 10:00:30+00', '2025-03-10 10:01:00+00');
		INSERT INTO status_checks (message_id, run_id, checked_at, http_status, deliverystatus, attempts) VALUES
		    ('t-1', 1, '2025-03-10 10:00:01+00', 200, 'delivered', 1),
		    ('t-2', 1, '2025-03-10 10:00:01+00', 200, 'processing', 1),
		    ('t-2', 1, '2025-03-10 10:00:02+00', 200, 'delivered', 1),
		    ('t-3', 1, '2025-03-10 10:00:01+00', 200, 'scheduled', 1),
		    ('t-3', 1, '2025-03-10 10:00:02+00', 200, 'processing', 1),
		    ('t-3', 1, '2025-03-10 10:00:03+00', 200, 'undeliverable', 1),
		    ('t-3', 2, '2025-03-10 10:05:00+00', 200, 'undeliverable', 1),
		    ('t-4', 1, '2025-03-10 10:00:04+00', 200, 'permanenterror', 1),
		    ('t-5', 1, '2025-03-10 10:00:40+00', 200, 'delivered', 1),
		    ('t-6', 1, '2025-03-10 10:00:05+00', 200, 'processing', 1),
		    ('t-6', 1, '2025-03-10 10:00:30+00', 200, 'processing', 1),
		    ('t-8', 1, '2025-03-10 10:00:50+00', 200, 'delivered', 1);
		INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM status_checks
		QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY checked_at DESC) = 1`); err != nil {
		t.Fatal(err)
	}
	header := []string{"campaign", "messages", "settled", "pending", "given_up", "p50_settle_s", "p90_settle_s", "p99_settle_s", "max_settle_s", "checks_per_message"}
	tests := []struct {
		giveUpAfter time.Duration
		want        []string
	}{
		// Settle times 0 (t-8, final 10 s before its sent time: clocks apart), 1, 2, 3 (not
		// 300: the first terminal answer), 4, 10 (from the load time) s. quantile_cont at q
		// is the value at rank q×5 of the sorted six, interpolated: p50 rank 2.5 = 2.5; p90
		// rank 4.5 = 4 + 0.5×6 = 7; p99 rank 4.95 = 4 + 0.95×6 = 9.7. 12 checks over 8
		// messages = 1.5. At 12:00 t-6 is 2 h old (given up after 1h59m45s), t-7 1h59m30s
		// (pending).
		{time.Hour + 59*time.Minute + 45*time.Second, []string{"tail", "8", "6", "1", "1", "2.5", "7", "9.7", "10", "1.5"}},
		{0, []string{"tail", "8", "6", "2", "0", "2.5", "7", "9.7", "10", "1.5"}},
	}
	for _, tt := range tests {
		res := run(t, db.DB, "settlement", report.Filter{AsOf: asOf, GiveUpAfter: tt.giveUpAfter})
		if diff := cmp.Diff([][]string{header, tt.want}, csvRows(t, res)); diff != "" {
			t.Errorf("settlement with give-up-after %v (-want +got):\n%s", tt.giveUpAfter, diff)
		}
	}
}
