package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// reportFixture writes the report fixture (testdata/report/fixture.sql: delivery rates
// quiet 0, spring 0.4, summer 0.75) into dir/batstat.duckdb and returns dir.
func reportFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "batstat.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "report", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(fixture)); err != nil {
		t.Fatalf("load fixture: %v", err)
	}
	return dir
}

func TestReportFailUnder(t *testing.T) {
	dir := reportFixture(t)
	// A delivery.sql of one's own replaces the printed report, not the gate's.
	own := filepath.Join(dir, "own")
	os.Mkdir(own, 0o755)
	os.WriteFile(filepath.Join(own, "delivery.sql"), []byte("SELECT 'all' AS campaign, 1.0 AS delivery_rate"), 0o644)
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string   // a substring of what was printed before the gate
		named    []string // campaigns the stderr line names
		notNamed []string
	}{
		{"two below", []string{"--fail-under", "0.5"}, 6, "TOTAL", []string{`"quiet" 0.0000 (0 of 2 delivered)`, `"spring" 0.4000 (4 of 10 delivered)`}, []string{"summer"}},
		{"all above", []string{"--fail-under", "0.5", "--campaign", "summer"}, 0, "summer", nil, nil},
		{"equal is not below", []string{"--fail-under", "0.75", "--campaign", "summer"}, 0, "summer", nil, nil},
		{"zero gates nothing", []string{"--fail-under", "0"}, 0, "spring", nil, nil},
		{"delivery not printed", []string{"--fail-under", "0.76", "--campaign", "summer", "--format", "json", "cost"}, 6, `"currency": "UAH"`, []string{`"summer" 0.7500 (3 of 4 delivered)`}, nil},
		// --since 2025-03-09 leaves out spring (sent 2025-03-08), keeps summer and quiet
		// (no usable sent time: first loaded on 03-09 and 03-10).
		{"period", []string{"--fail-under", "0.5", "--since", "2025-03-09"}, 6, "quiet", []string{`"quiet"`}, []string{"spring", "summer"}},
		{"own delivery report", []string{"--fail-under", "0.5", "--queries-dir", own, "--campaign", "spring"}, 6, "all", []string{`"spring" 0.4000`}, nil},
		{"named campaign without messages", []string{"--fail-under", "0.5", "--campaign", "nosuch"}, 0, "", []string{`campaign "nosuch" has no messages`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, dir, "", append([]string{"report"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("batstat report %q = exit %d, want %d; stderr:\n%s", tt.args, r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout lacks %q (the report is printed before the gate):\n%s", tt.stdout, r.stdout)
			}
			for _, w := range tt.named {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			for _, w := range tt.notNamed {
				if strings.Contains(r.stderr, w) {
					t.Errorf("stderr names %q:\n%s", w, r.stderr)
				}
			}
			if tt.code == exitBelowRate && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("stderr has more than the one line naming the campaigns:\n%s", r.stderr)
			}
		})
	}
	for _, bad := range []string{"1.5", "-0.1", "NaN", "half"} {
		if r := runCLI(t, dir, "", "report", "--fail-under", bad); r.code != exitUsage || r.stdout != "" {
			t.Errorf("--fail-under %s = exit %d, stdout %q; want 2 and nothing printed", bad, r.code, r.stdout)
		}
	}
}

func TestReportHTMLThroughTheBinary(t *testing.T) {
	dir := reportFixture(t)
	r := runCLI(t, dir, "", "report", "--format", "html", "--output", "page.html", "--fail-under", "0.5")
	if r.code != exitBelowRate {
		t.Fatalf("report --format html --fail-under 0.5 = exit %d, want 6; stderr:\n%s", r.code, r.stderr)
	}
	page, err := os.ReadFile(filepath.Join(dir, "page.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", `data-report="delivery"`, `data-report="cost"`, `data-report="fallback"`, `id="chart-settlement"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if r := runCLI(t, dir, "", "report", "--format", "html", "--output", "-", "delivery"); r.code != 0 || !strings.HasPrefix(r.stdout, "<!DOCTYPE html>") {
		t.Errorf("report --format html --output - = exit %d, stdout starting %.40q; want the page", r.code, r.stdout)
	}
	r = runCLI(t, dir, "", "report", "--format", "html")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--output") || r.stdout != "" {
		t.Errorf("report --format html without --output = exit %d, stderr %q; want 2 asking for --output", r.code, r.stderr)
	}
}

// readMetrics parses a metrics file as node_exporter's textfile collector would.
func readMetrics(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return mfs
}

// gauge is the value of a metric without labels; ok false when it is absent.
func gauge(mfs map[string]*dto.MetricFamily, name string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) != 1 {
		return 0, false
	}
	return mf.GetMetric()[0].GetGauge().GetValue(), true
}

// byLabels maps the metrics of a family by their label values joined with "/".
func byLabels(mfs map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mfs[name].GetMetric() {
		var key []string
		for _, l := range m.GetLabel() {
			key = append(key, l.GetName()+"="+l.GetValue())
		}
		v := m.GetGauge().GetValue()
		if m.GetCounter() != nil {
			v = m.GetCounter().GetValue()
		}
		out[strings.Join(key, ",")] = v
	}
	return out
}

// deliveryMetrics are the metrics the delivery report's JSON says there should be.
func deliveryMetrics(t *testing.T, reportJSON string) (messages, rates map[string]float64) {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(reportJSON), &rows); err != nil {
		t.Fatalf("delivery json: %v\n%s", err, reportJSON)
	}
	messages, rates = map[string]float64{}, map[string]float64{}
	for _, r := range rows {
		c := r["campaign"].(string)
		for _, s := range deliveryStatuses {
			messages["campaign="+c+",status="+s] = r[s].(float64)
		}
		rates["campaign="+c] = r["delivery_rate"].(float64)
	}
	return messages, rates
}

func TestReportMetricsFile(t *testing.T) {
	dir := reportFixture(t)
	prom := filepath.Join(dir, "batstat.prom")
	before := time.Now()
	r := runCLI(t, dir, "", "report", "--metrics-file", prom, "--campaign", "spring", "--campaign", "summer", "--since", "2025-03-01")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	mfs := readMetrics(t, prom)
	want := runCLI(t, dir, "", "report", "--format", "json", "--campaign", "spring", "--campaign", "summer", "--since", "2025-03-01", "delivery")
	wantMessages, wantRates := deliveryMetrics(t, want.stdout)
	if len(wantRates) != 2 {
		t.Fatalf("the delivery report has %d campaigns, want spring and summer", len(wantRates))
	}
	if diff := cmp.Diff(wantMessages, byLabels(mfs, "batstat_messages")); diff != "" {
		t.Errorf("batstat_messages differ from the delivery report (-report +metrics):\n%s", diff)
	}
	if diff := cmp.Diff(wantRates, byLabels(mfs, "batstat_delivery_rate")); diff != "" {
		t.Errorf("batstat_delivery_rate differs from the delivery report (-report +metrics):\n%s", diff)
	}
	if v, ok := gauge(mfs, "batstat_run_exit_code"); !ok || v != 0 {
		t.Errorf("batstat_run_exit_code = %v (present %v), want 0", v, ok)
	}
	if v, ok := gauge(mfs, "batstat_run_duration_seconds"); !ok || v <= 0 {
		t.Errorf("batstat_run_duration_seconds = %v (present %v), want > 0", v, ok)
	}
	success, ok := gauge(mfs, "batstat_last_success_timestamp_seconds")
	if !ok || success < float64(before.Unix()) || success > float64(time.Now().Unix()+1) {
		t.Errorf("batstat_last_success_timestamp_seconds = %v (present %v), want the time of the run", success, ok)
	}
	if _, ok := mfs["batstat_api_requests_total"]; ok {
		t.Errorf("a report wrote batstat_api_requests_total; it asks the API nothing")
	}

	// A run that fails its gate says so, and keeps the time of the last success.
	r = runCLI(t, dir, "", "report", "--metrics-file", prom, "--fail-under", "0.9")
	if r.code != exitBelowRate {
		t.Fatalf("exit %d, want 6; stderr:\n%s", r.code, r.stderr)
	}
	mfs = readMetrics(t, prom)
	if v, _ := gauge(mfs, "batstat_run_exit_code"); v != exitBelowRate {
		t.Errorf("batstat_run_exit_code = %v after a failed gate, want 6", v)
	}
	if v, ok := gauge(mfs, "batstat_last_success_timestamp_seconds"); !ok || v != success {
		t.Errorf("batstat_last_success_timestamp_seconds = %v (present %v) after a failed run, want the earlier success %v", v, ok, success)
	}
	if n := len(byLabels(mfs, "batstat_delivery_rate")); n != 3 {
		t.Errorf("batstat_delivery_rate has %d campaigns for a report of all three", n)
	}

	// Bad usage is a run that failed too, once --metrics-file is read.
	r = runCLI(t, dir, "", "report", "--metrics-file", prom, "--since", "yesterday")
	if r.code != exitUsage {
		t.Fatalf("exit %d, want 2", r.code)
	}
	if v, _ := gauge(readMetrics(t, prom), "batstat_run_exit_code"); v != exitUsage {
		t.Errorf("batstat_run_exit_code = %v after bad usage, want 2", v)
	}
	if r := runCLI(t, dir, "", "report", "--metrics-file", filepath.Join(dir, "none", "x.prom")); r.code != exitUsage || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("--metrics-file in a missing directory = exit %d, stderr %q; want 2", r.code, r.stderr)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, "batstat.prom*")); len(entries) != 1 {
		t.Errorf("files left beside the metrics file: %q, want only it (temporary files are renamed)", entries)
	}
}

func TestFetchMetricsFile(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.NotFoundRate = 0.1
	opts.Fault500 = 0.1
	opts.KeepLog = true
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 200)
	prom := filepath.Join(dir, "fetch.prom")
	r := runCLI(t, dir, "", "fetch", "--metrics-file", prom, "--rate", "0", "--retries", "20", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, ids)
	if r.code != 0 {
		t.Fatalf("fetch exit %d; stderr:\n%s", r.code, r.stderr)
	}
	mfs := readMetrics(t, prom)
	wantRequests := map[string]float64{}
	for _, req := range srv.Requests() {
		wantRequests["code="+strconv.Itoa(req.Status)]++
	}
	if diff := cmp.Diff(wantRequests, byLabels(mfs, "batstat_api_requests_total")); diff != "" {
		t.Errorf("batstat_api_requests_total differs from the requests the server answered (-server +metrics):\n%s", diff)
	}
	if wantRequests["code=404"] == 0 || wantRequests["code=500"] == 0 {
		t.Errorf("the server answered no 404 or no 500: %v", wantRequests)
	}
	want := runCLI(t, dir, "", "report", "--format", "json", "delivery")
	wantMessages, wantRates := deliveryMetrics(t, want.stdout)
	if diff := cmp.Diff(wantMessages, byLabels(mfs, "batstat_messages")); diff != "" {
		t.Errorf("batstat_messages differ from the delivery report (-report +metrics):\n%s", diff)
	}
	if diff := cmp.Diff(wantRates, byLabels(mfs, "batstat_delivery_rate")); diff != "" {
		t.Errorf("batstat_delivery_rate differs from the delivery report (-report +metrics):\n%s", diff)
	}
	if v, _ := gauge(mfs, "batstat_run_exit_code"); v != 0 {
		t.Errorf("batstat_run_exit_code = %v, want 0", v)
	}
	success, ok := gauge(mfs, "batstat_last_success_timestamp_seconds")
	if !ok {
		t.Fatalf("no batstat_last_success_timestamp_seconds after a run that succeeded")
	}

	// Rejected credentials: exit 1, and the metrics say so, with the 401 counted and the
	// last success kept.
	r = runCLI(t, dir, "", "fetch", "--metrics-file", prom, "--api-url", srv.URL, "--api-key", "wrong", ids)
	if r.code != exitFatal {
		t.Fatalf("fetch with a wrong key = exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	mfs = readMetrics(t, prom)
	if v, ok := gauge(mfs, "batstat_run_exit_code"); !ok || v != exitFatal {
		t.Errorf("batstat_run_exit_code = %v (present %v) after rejected credentials, want 1", v, ok)
	}
	if v, ok := gauge(mfs, "batstat_run_duration_seconds"); !ok || v <= 0 {
		t.Errorf("batstat_run_duration_seconds = %v (present %v), want > 0", v, ok)
	}
	if v, ok := gauge(mfs, "batstat_last_success_timestamp_seconds"); !ok || v != success {
		t.Errorf("batstat_last_success_timestamp_seconds = %v (present %v), want the earlier success %v", v, ok, success)
	}
	if n := byLabels(mfs, "batstat_api_requests_total")["code=401"]; n < 1 {
		t.Errorf(`batstat_api_requests_total{code="401"} = %v, want the rejected requests counted`, n)
	}

	// Unreachable API: the run stops (exit 1); attempts without an answer count as
	// code="error": the 10 first attempts and at least one retry, at most 2 each.
	few := writeIDs(t, dir, "few.csv", 10)
	r = runCLI(t, dir, "", "fetch", "--metrics-file", prom, "--retries", "1", "--api-url", "http://127.0.0.1:1", "--api-key", "k", few)
	if r.code != exitFatal {
		t.Fatalf("fetch from an unreachable API = exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	mfs = readMetrics(t, prom)
	if v, _ := gauge(mfs, "batstat_run_exit_code"); v != exitFatal {
		t.Errorf("batstat_run_exit_code = %v after an unreachable API, want 1", v)
	}
	if got := byLabels(mfs, "batstat_api_requests_total"); got["code=error"] < 11 || got["code=error"] > 20 || len(got) != 1 {
		t.Errorf("batstat_api_requests_total = %v, want only code=error, 11 to 20 (10 messages, 2 attempts each at most)", got)
	}
	if got := byLabels(mfs, "batstat_messages"); got["campaign=few,status=unchecked"] != 10 || len(got) != len(deliveryStatuses) {
		t.Errorf("batstat_messages = %v, want only the campaign of the input, few, with 10 unchecked", got)
	}

	// Bad usage with --metrics-file: exit 2 in the file too.
	if r := runCLI(t, dir, "", "fetch", "--metrics-file", prom, "--rate", "-1", "--api-key", "k", ids); r.code != exitUsage {
		t.Fatalf("fetch --rate -1 = exit %d, want 2", r.code)
	}
	if v, _ := gauge(readMetrics(t, prom), "batstat_run_exit_code"); v != exitUsage {
		t.Errorf("batstat_run_exit_code = %v after bad usage, want 2", v)
	}
}

func TestReportGateAndPageOptions(t *testing.T) {
	o, err := parse(t, reportCommand, "", "report", "--fail-under", "0.95", "--format", "html", "--output", "p.html")
	if err != nil {
		t.Fatal(err)
	}
	if o.failUnder == nil || *o.failUnder != 0.95 || !o.html || o.out.path != "p.html" {
		t.Errorf("options = fail-under %v, html %v, output %q; want 0.95, true, p.html", o.failUnder, o.html, o.out.path)
	}
	if o, _ := parse(t, reportCommand, "", "report"); o.failUnder != nil || o.html {
		t.Errorf("no flags: fail-under %v, html %v; want no gate, no page", o.failUnder, o.html)
	}
	checkUsage(t, reportCommand, []usageCase{
		{[]string{"report", "--fail-under", "1.01"}, 2, []string{"--fail-under", "0 to 1"}},
		{[]string{"report", "--fail-under", "-1"}, 2, []string{"--fail-under"}},
		{[]string{"report", "--format", "html"}, 2, []string{"--output"}},
		{[]string{"report", "--metrics-file", filepath.Join(t.TempDir(), "no", "m.prom")}, 2, []string{"--metrics-file"}},
	})
	// The page is report's: query keeps the row formats.
	checkUsage(t, queryCommand, []usageCase{{[]string{"query", "--format", "html", "SELECT 1"}, 2, []string{"html"}}})
}
