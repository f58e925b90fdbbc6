package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
)

// parse runs args through the command as batstat would, with a run function that only
// keeps the options it is given.
func parse[O any](t *testing.T, newCmd func(*env, runFunc[O]) *cli.Command, stdin string, args ...string) (O, error) {
	t.Helper()
	var got O
	e := &env{stdin: strings.NewReader(stdin), stdout: io.Discard, stderr: io.Discard}
	cmd := newCmd(e, func(_ context.Context, o O, _ *env) error { got = o; return nil })
	err := newApp(e, cmd).RunContext(context.Background(), append([]string{"batstat"}, args...))
	return got, err
}

// usageCase is a command line that must fail with an exit status and a message.
type usageCase struct {
	args []string
	code int
	want []string // substrings of the message
}

func checkUsage[O any](t *testing.T, newCmd func(*env, runFunc[O]) *cli.Command, tests []usageCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parse(t, newCmd, "", tt.args...)
			if err == nil {
				t.Fatalf("batstat %q = no error, want exit %d", tt.args, tt.code)
			}
			if got := exitCode(err); got != tt.code {
				t.Errorf("batstat %q = exit %d (%v), want %d", tt.args, got, err, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("batstat %q: error %q lacks %q", tt.args, err, w)
				}
			}
		})
	}
}

func TestFetchOptionsDefaults(t *testing.T) {
	o, err := parse(t, fetchCommand, "", "fetch", "--api-key", "k", "a.csv", "-")
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		DB, MemoryLimit, APIURL string
		Inputs                  []string
		Concurrency, Burst      int
		Rate                    float64
		Timeout                 time.Duration
		Retries                 int
		Refresh                 ingest.Refresh
		Auth                    smsbat.AuthMode
		Client                  bool
	}
	c := o.config
	got := view{o.db.path, o.db.memoryLimit, c.APIURL, c.Inputs, c.Concurrency, c.Burst, c.Rate,
		c.Timeout, c.Retries, c.Refresh, o.auth.Mode, c.Client != nil}
	want := view{"batstat.duckdb", ingest.MemoryLimit, smsbat.DefaultBaseURL, []string{"a.csv", "-"}, 10, 0, 10,
		10 * time.Second, 5, ingest.RefreshPending, smsbat.AuthHeader, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fetch options (-want +got):\n%s", diff)
	}
}

func TestFetchOptionsRefuse(t *testing.T) {
	dir := t.TempDir()
	checkUsage(t, fetchCommand, []usageCase{
		{[]string{"fetch", "--api-key", "k"}, 2, []string{"no input FILE"}},
		{[]string{"fetch", "a.csv"}, 2, []string{"no credentials"}},
		{[]string{"fetch", "--api-key", "k", "-", "-"}, 2, []string{`fetch: "-" (stdin) given more than once`}},
		{[]string{"fetch", "--api-key", "k", "--concurrency", "0", "--retries", "-1", "a.csv"}, 2,
			[]string{"--concurrency 0: must be at least 1", "--retries -1: must not be negative"}},
		{[]string{"fetch", "--api-key", "k", "--rate", "-0.5", "a.csv"}, 2, []string{"--rate -0.5: must be 0 (unlimited) or more"}},
		{[]string{"fetch", "--api-key", "k", "--burst", "-1", "a.csv"}, 2, []string{"--burst -1: must not be negative"}},
		{[]string{"fetch", "--api-key", "k", "--timeout", "0s", "a.csv"}, 2, []string{"--timeout 0s: must be positive"}},
		{[]string{"fetch", "--api-key", "k", "--refresh", "", "a.csv"}, 2, []string{`--refresh "": want pending, due or all`}},
		{[]string{"fetch", "--api-key", "k", "--api-url", "ftp://x", "a.csv"}, 2, []string{"ftp://x"}},
		{[]string{"fetch", "--api-key", "k", "--api-url", "http://u:p@127.0.0.1", "a.csv"}, 2, []string{"--api-url"}},
		{[]string{"fetch", "--api-key", "k", "--api-url", "http://api.example.com", "a.csv"}, 2, []string{"https"}},
		{[]string{"fetch", "--api-key", "k", "--delimiter", "ab", "a.csv"}, 2, []string{"--delimiter"}},
		{[]string{"fetch", "--api-key", "k", "--log-level", "loud", "a.csv"}, 2, []string{"--log-level"}},
		{[]string{"fetch", "--api-key", "k", "--auth", "oauth", "a.csv"}, 2, []string{"oauth"}},
		{[]string{"fetch", "--api-key", "k", "a.csv", "--rate", "0"}, 2, []string{`"--rate" comes after the FILE "a.csv"`, "./NAME"}},
		{[]string{"fetch", "--api-key", "k", "--memory-limit", "96", "a.csv"}, 2, []string{"--memory-limit"}},
		// Not usage: the input or the key file cannot be read.
		{[]string{"fetch", "--api-key", "k", filepath.Join(dir, "none-*.csv")}, 1, []string{"no files match"}},
		{[]string{"fetch", "--api-key-file", filepath.Join(dir, "key"), "a.csv"}, 1, []string{"api key file"}},
	})
}

func TestFetchOptionsSchedule(t *testing.T) {
	o, err := parse(t, fetchCommand, "", "fetch", "--api-key", "k", "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	if c := o.config; c.Watch || c.MaxWait != 24*time.Hour || c.Schedule != ingest.DefaultSchedule() {
		t.Errorf("fetch: watch %v, max wait %v, schedule %+v; want no watch, 24h and the default schedule", c.Watch, c.MaxWait, c.Schedule)
	}
	o, err = parse(t, fetchCommand, "", "fetch", "--api-key", "k", "--watch", "--max-wait", "2h",
		"--min-interval", "10s", "--max-interval", "30m", "--give-up-after", "48h", "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := ingest.Schedule{MinInterval: 10 * time.Second, MaxInterval: 30 * time.Minute, GiveUpAfter: 48 * time.Hour}
	if c := o.config; !c.Watch || c.MaxWait != 2*time.Hour || c.Schedule != want || c.Refresh != ingest.RefreshPending {
		t.Errorf("fetch --watch: watch %v, max wait %v, schedule %+v, refresh %s; want the flags' values", c.Watch, c.MaxWait, c.Schedule, c.Refresh)
	}
	if o, err := parse(t, fetchCommand, "", "fetch", "--api-key", "k", "--refresh", "due", "--give-up-after", "1h", "a.csv"); err != nil ||
		o.config.Refresh != ingest.RefreshDue || o.config.Schedule.GiveUpAfter != time.Hour {
		t.Errorf("fetch --refresh due --give-up-after 1h = %+v, %v", o.config, err)
	}
	api := []string{"fetch", "--api-key", "k"}
	checkUsage(t, fetchCommand, []usageCase{
		{append(api, "--watch", "--min-interval", "999ms", "a.csv"), 2, []string{"--min-interval 999ms: must be at least 1s"}},
		{append(api, "--refresh", "due", "--min-interval", "0s", "a.csv"), 2, []string{"--min-interval 0s"}},
		{append(api, "--watch", "--min-interval", "2m", "--max-interval", "1m", "a.csv"), 2, []string{"--max-interval 1m0s: must be at least the minimum interval (2m0s)"}},
		{append(api, "--watch", "--give-up-after", "0s", "a.csv"), 2, []string{"--give-up-after 0s: must be positive"}},
		{append(api, "--watch", "--max-wait", "-1s", "a.csv"), 2, []string{"--max-wait -1s: must be positive"}},
		{append(api, "--refresh", "soon", "a.csv"), 2, []string{`--refresh "soon": want pending, due or all`}},
		// The schedule's flags where nothing would use them.
		{append(api, "--max-wait", "1h", "a.csv"), 2, []string{"--max-wait", "--watch"}},
		{append(api, "--refresh", "due", "--max-wait", "1h", "a.csv"), 2, []string{"--max-wait", "--watch"}},
		{append(api, "--min-interval", "10s", "a.csv"), 2, []string{"--min-interval", "--refresh due", "--watch"}},
		{append(api, "--refresh", "all", "--give-up-after", "1h", "a.csv"), 2, []string{"--give-up-after"}},
	})
}

func TestReportOptions(t *testing.T) {
	o, err := parse(t, reportCommand, "", "report", "--since", "2026-01-02", "--campaign", "a", "--campaign", "b", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range o.selected {
		names = append(names, d.Name)
	}
	want := report.Filter{Campaigns: []string{"a", "b"}, Since: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), GiveUpAfter: 72 * time.Hour}
	if diff := cmp.Diff(want, o.filter); diff != "" || o.out.format != report.FormatJSON || !cmp.Equal(names, report.DefaultNames()) {
		t.Errorf("report options: reports %v, format %q, filter (-want +got):\n%s", names, o.out.format, diff)
	}
	if o, err := parse(t, reportCommand, "", "report", "--give-up-after", "24h", "settlement"); err != nil || o.filter.GiveUpAfter != 24*time.Hour {
		t.Errorf("report --give-up-after 24h = %+v, %v; want 24h in the filter", o.filter, err)
	}
	// --list uses none of the other flags.
	if o, err := parse(t, reportCommand, "", "report", "--list", "--format", "xml", "nosuch"); err != nil || !o.list {
		t.Errorf("report --list with unused flags = %+v, %v; want the list", o, err)
	}
	checkUsage(t, reportCommand, []usageCase{
		{[]string{"report", "nosuch"}, 2, []string{"nosuch"}},
		{[]string{"report", "--format", "xml"}, 2, []string{"--format", "xml"}},
		{[]string{"report", "--since", "yesterday"}, 2, []string{"--since", "yesterday"}},
		{[]string{"report", "--give-up-after", "0s", "settlement"}, 2, []string{"--give-up-after 0s: must be positive"}},
		{[]string{"report", "--queries-dir", filepath.Join(t.TempDir(), "none")}, 1, nil},
		{[]string{"report", "--format", "csv"}, 2, []string{"--output-dir", "delivery, cost, fallback"}},
		{[]string{"report", "--format", "csv", "--output", "x.csv", "delivery", "cost"}, 2, []string{"--output-dir"}},
		{[]string{"report", "--output", "a", "--output-dir", "b"}, 2, []string{"not both"}},
		{[]string{"report", "--output-dir", "b", "cost", "cost"}, 2, []string{"cost given twice"}},
		{[]string{"report", "delivery", "--format", "csv"}, 2, []string{`"--format" comes after the report name "delivery"`, "flags go before"}},
		{[]string{"report", "--threads", "-2"}, 2, []string{"--threads -2"}},
		{[]string{"report", "--memory-limit", "lots"}, 2, []string{`--memory-limit "lots"`, "512MB"}},
		{[]string{"report", "--memory-limit", "0GB"}, 2, []string{"more than 0"}},
	})
	for _, args := range [][]string{
		{"report", "--format", "csv", "delivery"},
		{"report", "--format", "csv", "--output-dir", "out"},
		{"report", "--memory-limit", "1.5 GiB", "--threads", "2"},
	} {
		if _, err := parse(t, reportCommand, "", args...); err != nil {
			t.Errorf("batstat %q = %v, want no error", args, err)
		}
	}
}

func TestQueryOptions(t *testing.T) {
	o, err := parse(t, queryCommand, "SELECT 42", "query", "--format", "json", "-")
	if err != nil || o.sql != "SELECT 42" || o.out.format != report.FormatJSON {
		t.Errorf("query - = %+v, %v; want the SQL from stdin", o, err)
	}
	checkUsage(t, queryCommand, []usageCase{
		{[]string{"query"}, 2, []string{"exactly one SQL"}},
		{[]string{"query", "-"}, 2, []string{"empty SQL"}},
		{[]string{"query", "--format", "xml", "SELECT 1"}, 2, []string{"--format", "xml"}},
		{[]string{"query", "SELECT 1", "--format", "csv"}, 2, []string{`"--format" comes after the SQL "SELECT 1"`}},
		{[]string{"query", "--output-dir", "x", "SELECT 1"}, 2, []string{"output-dir"}},
	})
}

func TestExportOptions(t *testing.T) {
	o, err := parse(t, exportCommand, "", "export", "--format", "parquet", "--output", "x.parquet", "runs")
	if err != nil || o.export.Table != "runs" || o.export.Format != "parquet" || o.export.Output != "x.parquet" {
		t.Errorf("export runs = %+v, %v", o, err)
	}
	checkUsage(t, exportCommand, []usageCase{
		{[]string{"export", "a", "b"}, 2, []string{"at most one TABLE"}},
		{[]string{"export", "--query", "SELECT 1", "runs"}, 2, []string{"not both"}},
		{[]string{"export", "--format", "xml"}, 2, []string{"xml"}},
		{[]string{"export", "--partition-by", "campaign"}, 2, []string{"--output"}},
		{[]string{"export", "--output", "x.xlsx"}, 2, []string{"cannot tell the format of x.xlsx", ".parquet"}},
		{[]string{"export", "runs", "--output", "x.csv"}, 2, []string{`"--output" comes after the TABLE "runs"`}},
		{[]string{"export", "--threads", "-1"}, 2, []string{"--threads -1"}},
	})
	o, err = parse(t, exportCommand, "", "export", "--partition-by", "campaign", "--output", filepath.Join(t.TempDir(), "parts"))
	if err != nil || o.export.Format != "" {
		t.Fatalf("export --partition-by = %+v, %v", o, err)
	}
}

func TestDemoAndMockServerOptions(t *testing.T) {
	checkUsage(t, demoCommand, []usageCase{
		{[]string{"demo", "--format", "xml"}, 2, []string{"--format", "xml"}},
		{[]string{"demo", "--format", "csv"}, 2, []string{"csv holds one table"}},
		{[]string{"demo", "--log-format", "xml"}, 2, []string{"--log-format", "xml"}},
	})
	o, err := parse(t, mockServerCommand, "", "mock-server", "--listen", ":0", "--fault-500", "0.5", "--seed", "7")
	if err != nil || o.listen != ":0" || o.fake.Fault500 != 0.5 || o.fake.Seed != 7 || o.fake.APIKey == "" {
		t.Errorf("mock-server options = %+v, %v", o, err)
	}
}

func TestStatusOptions(t *testing.T) {
	o, err := parse(t, statusCommand, "", "status", "--api-key", "k", " m-1 ", "m-2", "m-1")
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		IDs               []string
		Wait, Interval    time.Duration
		Retries           int
		Record            bool
		DB, Campaign, URL string
		Format            report.Format
		Client            bool
	}
	c := o.config
	got := view{c.IDs, c.Wait, c.Interval, c.Retries, o.record, o.db.path, o.campaign, o.apiURL, o.out.format, c.Client != nil}
	want := view{[]string{"m-1", "m-2"}, 0, 5 * time.Second, 5, false, "batstat.duckdb", "status", smsbat.DefaultBaseURL, report.FormatTable, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status options (-want +got):\n%s", diff)
	}
	o, err = parse(t, statusCommand, "", "status", "--api-key", "k", "--wait", "30s", "--interval", "1s",
		"--record", "--db", "x.duckdb", "--campaign", "otp", "--format", "json", "m-1")
	if err != nil || o.config.Wait != 30*time.Second || o.config.Interval != time.Second || !o.record ||
		o.db.path != "x.duckdb" || o.campaign != "otp" || o.out.format != report.FormatJSON {
		t.Errorf("status --wait --record options = %+v, %v", o, err)
	}
}

func TestStatusOptionsRefuse(t *testing.T) {
	checkUsage(t, statusCommand, []usageCase{
		{[]string{"status", "--api-key", "k"}, 2, []string{"no message ID"}},
		{[]string{"status", "m-1"}, 2, []string{"no credentials"}},
		{[]string{"status", "--api-key", "k", "--interval", "999ms", "m-1"}, 2, []string{"--interval 999ms: must be at least 1s"}},
		{[]string{"status", "--api-key", "k", "--interval", "0s", "m-1"}, 2, []string{"--interval 0s"}},
		{[]string{"status", "--api-key", "k", "--wait", "-1s", "--retries", "-1", "m-1"}, 2,
			[]string{"--wait -1s: must not be negative", "--retries -1: must not be negative"}},
		{[]string{"status", "--api-key", "k", "--timeout", "0s", "m-1"}, 2, []string{"--timeout 0s: must be positive"}},
		{[]string{"status", "--api-key", "k", "--format", "xml", "m-1"}, 2, []string{"--format", "xml"}},
		{[]string{"status", "--api-key", "k", "--campaign", "otp", "m-1"}, 2, []string{"--campaign", "--record"}},
		{[]string{"status", "--api-key", "k", "--record", "--campaign", " ", "m-1"}, 2, []string{"--campaign: empty"}},
		{[]string{"status", "--api-key", "k", "m-1", " "}, 2, []string{"empty message ID"}},
		{[]string{"status", "--api-key", "k", "m\xff"}, 2, []string{"not UTF-8"}},
		{[]string{"status", "--api-key", "k", strings.Repeat("x", 257)}, 2, []string{"longer than 256"}},
		{[]string{"status", "--api-key", "k", "--api-url", "http://api.example.com", "m-1"}, 2, []string{"https"}},
	})
}
