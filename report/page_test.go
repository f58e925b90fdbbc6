package report_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

var pageDir = flag.String("page-dir", "", "also write the pages the tests render into this directory (to look at them in a browser, or with scripts/check-html.sh)")

// renderPage makes the page of the default reports over f and parses it.
func renderPage(t *testing.T, db *sql.DB, name string, f report.Filter) (string, *html.Node) {
	t.Helper()
	var tables []*report.Result
	for _, n := range report.DefaultNames() {
		tables = append(tables, run(t, db, n, f))
	}
	page, err := report.NewPage(context.Background(), db, report.PageOptions{
		Database: "fixture.duckdb", Filter: f, Tables: tables, Now: asOf,
	})
	if err != nil {
		t.Fatalf("NewPage: %v", err)
	}
	var buf bytes.Buffer
	if err := page.Render(&buf); err != nil {
		t.Fatalf("Render: %v", err)
	}
	if *pageDir != "" {
		if err := os.WriteFile(filepath.Join(*pageDir, name+".html"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse the page: %v", err)
	}
	return buf.String(), doc
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// findAll returns the element nodes under n for which match is true, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// chartShapes returns the rect and path shapes of a chart that carry a data-value.
func chartShapes(t *testing.T, doc *html.Node, id string) []*html.Node {
	t.Helper()
	fig := findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == "chart-"+id })
	if len(fig) != 1 {
		t.Fatalf("the page has %d charts with id chart-%s, want 1", len(fig), id)
	}
	return findAll(fig[0], func(n *html.Node) bool { _, ok := attr(n, "data-value"); return ok })
}

// jsonRows renders res as JSON and decodes it, numbers kept as their literals.
func jsonRows(t *testing.T, res *report.Result) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Render(&buf, report.FormatJSON, []*report.Result{res}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// The page's tables hold, cell for cell, what the json format prints for the same reports,
// and its charts draw the same figures.
func TestPageNumbersEqualReports(t *testing.T) {
	db, _ := fixtureDB(t)
	page, doc := renderPage(t, db.DB, "fixture", report.Filter{})

	for _, name := range report.DefaultNames() {
		want := jsonRows(t, run(t, db.DB, name, report.Filter{}))
		tables := findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "data-report"); return n.Data == "table" && v == name })
		if len(tables) != 1 {
			t.Fatalf("the page has %d tables of %s, want 1", len(tables), name)
		}
		got := tableRows(t, tables[0])
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("table %s differs from the json report (-json +page):\n%s", name, diff)
		}
	}

	// Delivery rate per campaign, and each status of the status mix.
	delivery := jsonRows(t, run(t, db.DB, "delivery", report.Filter{}))
	wantRates, wantMix := map[string]string{}, map[string]string{}
	for _, r := range delivery {
		c := r["campaign"].(string)
		wantRates[c] = r["delivery_rate"].(json.Number).String()
		for _, s := range []string{"delivered", "undeliverable", "permanenterror", "scheduled", "processing", "not_found", "other", "unchecked"} {
			if n := r[s].(json.Number).String(); n != "0" {
				wantMix[c+"/"+s] = n
			}
		}
	}
	gotRates, gotMix := map[string]string{}, map[string]string{}
	for _, n := range chartShapes(t, doc, "delivery-rate") {
		c, _ := attr(n, "data-campaign")
		gotRates[c], _ = attr(n, "data-value")
	}
	for _, n := range chartShapes(t, doc, "status-mix") {
		c, _ := attr(n, "data-campaign")
		s, _ := attr(n, "data-status")
		gotMix[c+"/"+s], _ = attr(n, "data-value")
	}
	if diff := cmp.Diff(wantRates, gotRates); diff != "" {
		t.Errorf("delivery rate chart (-report +chart):\n%s", diff)
	}
	if diff := cmp.Diff(wantMix, gotMix); diff != "" {
		t.Errorf("status mix chart (-report +chart):\n%s", diff)
	}

	// Cost per currency: each campaign's exact cost in that currency (currencies without
	// any cost get no chart).
	wantCost := map[string]string{}
	for _, r := range jsonRows(t, run(t, db.DB, "cost", report.Filter{})) {
		if v := r["cost"].(json.Number).String(); v != "0.000000" {
			wantCost[r["currency"].(string)+"/"+r["campaign"].(string)] = v
		}
	}
	gotCost := map[string]string{}
	for _, cur := range []string{"", "EUR", "UAH"} {
		for _, n := range chartShapes(t, doc, "cost-"+cur) {
			c, _ := attr(n, "data-campaign")
			if v, _ := attr(n, "data-value"); v != "0.000000" {
				gotCost[cur+"/"+c] = v
			}
		}
	}
	if diff := cmp.Diff(wantCost, gotCost); diff != "" {
		t.Errorf("cost charts (-report +chart):\n%s", diff)
	}

	// Fallback: listed, used and delivered per campaign.
	wantFB, gotFB := map[string]string{}, map[string]string{}
	for _, r := range jsonRows(t, run(t, db.DB, "fallback", report.Filter{})) {
		for col, cls := range map[string]string{"with_fallback": "f-with", "fallback_used": "f-used", "fallback_delivered": "f-delivered"} {
			if n := r[col].(json.Number).String(); n != "0" {
				wantFB[r["campaign"].(string)+"/"+cls] = n
			}
		}
	}
	for _, n := range chartShapes(t, doc, "fallback") {
		c, _ := attr(n, "data-campaign")
		s, _ := attr(n, "data-status")
		gotFB[c+"/"+s], _ = attr(n, "data-value")
	}
	if diff := cmp.Diff(wantFB, gotFB); diff != "" {
		t.Errorf("fallback chart (-report +chart):\n%s", diff)
	}

	// Settlement, worked out from fixture.sql: spring's 5 final messages were first seen
	// final 40 h after their sent time (within 2 days), summer's 4 after 150 s (its
	// first_loaded_at, having no sent_at); spring's 5 others and quiet's 2 are not final.
	// So of 16 messages: 4 within 10 min, 9 within 7 days, 7 not yet.
	settled := findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == "settled-within" })
	if len(settled) != 1 {
		t.Fatalf("the page has %d settled-within tables, want 1", len(settled))
	}
	var gotSettled [][]string
	for _, tr := range findAll(settled[0], func(n *html.Node) bool { return n.Data == "tr" }) {
		var cells []string
		for _, c := range findAll(tr, func(n *html.Node) bool { return n.Data == "td" || n.Data == "th" }) {
			cells = append(cells, strings.TrimSpace(textOf(c)))
		}
		gotSettled = append(gotSettled, cells)
	}
	wantSettled := [][]string{
		{"settled within", "messages", "1 min", "10 min", "1 h", "6 h", "1 day", "7 days", "later", "not yet"},
		{"all selected campaigns", "16", "0%", "25%", "25%", "25%", "25%", "56.3%", "0%", "43.8%"},
		{"spring", "10", "0%", "0%", "0%", "0%", "0%", "50%", "0%", "50%"},
		{"summer", "4", "0%", "100%", "100%", "100%", "100%", "100%", "0%", "0%"},
		{"quiet", "2", "0%", "0%", "0%", "0%", "0%", "0%", "0%", "100%"},
	}
	if diff := cmp.Diff(wantSettled, gotSettled); diff != "" {
		t.Errorf("settled-within table (-want +page):\n%s", diff)
	}
	curves := chartShapes(t, doc, "settlement")
	if len(curves) != 4 {
		t.Fatalf("settlement chart has %d curves, want 4 (all, and each campaign)", len(curves))
	}
	if v, _ := attr(curves[0], "data-value"); v != strconv.FormatFloat(9.0/16, 'g', -1, 64) {
		t.Errorf("the curve of all campaigns ends at %s, want 9/16", v)
	}

	// The header says what was selected.
	for id, want := range map[string]string{"meta-campaigns": "all (3)", "meta-latest": "2025-03-10 10:00:10 UTC", "meta-database": "fixture.duckdb"} {
		n := findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
		if len(n) != 1 || textOf(n[0]) != want {
			t.Errorf("header %s = %q, want %q", id, textOf(n[0]), want)
		}
	}
	checkSelfContained(t, page, doc)
}

// tableRows reads a table of the page back into row objects: the columns named by its
// header, each cell's value its data-value (JSON) when it has one, else its text, a
// number in a numeric column.
func tableRows(t *testing.T, table *html.Node) []map[string]any {
	t.Helper()
	var cols []string
	var numeric []bool
	for _, th := range findAll(table, func(n *html.Node) bool { return n.Data == "th" }) {
		cols = append(cols, textOf(th))
		cls, _ := attr(th, "class")
		numeric = append(numeric, cls == "n")
	}
	var rows []map[string]any
	for _, tr := range findAll(table, func(n *html.Node) bool { return n.Data == "tr" && n.Parent.Data == "tbody" }) {
		row := map[string]any{}
		for i, td := range findAll(tr, func(n *html.Node) bool { return n.Data == "td" }) {
			val, ok := attr(td, "data-value")
			switch {
			case ok:
				dec := json.NewDecoder(strings.NewReader(val))
				dec.UseNumber()
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatalf("data-value %q of %s: %v", val, cols[i], err)
				}
				row[cols[i]] = v
			case numeric[i]:
				row[cols[i]] = json.Number(textOf(td))
			default:
				row[cols[i]] = textOf(td)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// checkSelfContained fails when the page could fetch anything at view time or run a
// script: it holds no URL, no element that loads, no event handler.
func checkSelfContained(t *testing.T, page string, doc *html.Node) {
	t.Helper()
	for _, bad := range []string{"http:", "https:", "//", "url(", "@import", "@font-face"} {
		// "//" may only appear as the text of a campaign name, never in this fixture.
		if strings.Contains(page, bad) {
			i := strings.Index(page, bad)
			t.Errorf("the page holds %q: ...%s...", bad, page[max(0, i-60):min(len(page), i+60)])
		}
	}
	for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignObject", "a":
			t.Errorf("the page has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" || a.Key == "href" || a.Key == "xlink:href" {
				t.Errorf("<%s> has an attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	}
}

// Campaign names are data: whatever they hold is shown as text, and never becomes markup
// in the HTML or in the SVG of the charts.
func TestPageEscapesHostileNames(t *testing.T) {
	hostile := []string{
		`<script>alert(1)</script>`,
		`"><svg onload=alert(2)>`,
		`</title><img src=x onerror=alert(3)>`,
		`</text></svg><iframe src="javascript:alert(4)">`,
		`' onmouseover='alert(5)`,
		`&amp; <!-- ]]> {{.}} ${x}`,
	}
	db := newDB(t)
	var values []string
	for i, name := range hostile {
		for j := range 3 {
			status := []string{"delivered", "undeliverable", "processing"}[j]
			values = append(values, fmt.Sprintf("(%d, %d, %s)", i, j, sqlString(name+"|"+status)))
		}
	}
	exec(t, db, `CREATE TEMP TABLE hostile (c INT, j INT, v VARCHAR); INSERT INTO hostile VALUES `+strings.Join(values, ", "))
	exec(t, db, `
		INSERT INTO runs (run_id, started_at, finished_at, outcome) VALUES (1, '2025-03-01 00:00:00+00', '2025-03-01 00:10:00+00', 'ok');
		INSERT INTO messages (message_id, campaign, first_loaded_at, run_id)
		SELECT 'h-' || c || '-' || j, split_part(v, '|', 1), '2025-03-01 00:00:00+00', 1 FROM hostile;
		INSERT INTO status_checks (message_id, run_id, checked_at, http_status, deliverystatus, cost, bill_currency, fallbacks, attempts)
		SELECT 'h-' || c || '-' || j, 1, '2025-03-01 00:01:00+00', 200, split_part(v, '|', 2), 0.05, '<b>UAH</b>',
		       '[{"type":"sms","status":"delivered"}]', 1 FROM hostile;
		INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM status_checks;`)
	page, doc := renderPage(t, db.DB, "hostile", report.Filter{Campaigns: hostile})

	for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
		switch n.Data {
		case "script", "img", "iframe":
			t.Errorf("a campaign name became a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" {
				t.Errorf("a campaign name became an attribute %s=%q of <%s>", a.Key, a.Val, n.Data)
			}
		}
	}
	// Every name reaches the reader intact: in the delivery table and as a bar of the
	// delivery chart.
	var inTable, inChart []string
	for _, table := range findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "data-report"); return v == "delivery" }) {
		for _, row := range tableRows(t, table) {
			inTable = append(inTable, row["campaign"].(string))
		}
	}
	for _, n := range chartShapes(t, doc, "delivery-rate") {
		c, _ := attr(n, "data-campaign")
		inChart = append(inChart, c)
	}
	want := slices.Sorted(slices.Values(hostile))
	slices.Sort(inTable)
	slices.Sort(inChart)
	if diff := cmp.Diff(want, inTable); diff != "" {
		t.Errorf("names in the delivery table (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, inChart); diff != "" {
		t.Errorf("names in the delivery chart (-want +got):\n%s", diff)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "<img") || strings.Contains(page, "<iframe") {
		t.Errorf("the page text holds an unescaped tag")
	}
}

// A page over 200 campaigns stays readable: each chart names the 15 largest and adds up
// the rest as one bar, whose figures are the sums of theirs. One campaign gets one bar.
func TestPageManyAndOneCampaigns(t *testing.T) {
	db := newDB(t)
	// Campaign k (0..199) has k+1 messages; every 7th is undeliverable, every 11th still
	// processing, the rest delivered, each seen final (k*37 % 5000) s after loading.
	exec(t, db, `
		INSERT INTO runs (run_id, started_at, finished_at, outcome) VALUES (1, '2025-03-01 00:00:00+00', '2025-03-01 00:10:00+00', 'ok');
		CREATE TEMP TABLE gen AS
		SELECT printf('campaign-%03d', k) AS campaign, printf('m-%03d-%03d', k, j) AS id, k, j
		FROM range(200) a(k), range(200) b(j) WHERE j <= k;
		INSERT INTO messages (message_id, campaign, first_loaded_at, run_id)
		SELECT id, campaign, '2025-03-01 00:00:00+00', 1 FROM gen;
		INSERT INTO status_checks (message_id, run_id, checked_at, http_status, deliverystatus, cost, bill_currency, attempts)
		SELECT id, 1, TIMESTAMPTZ '2025-03-01 00:00:00+00' + to_seconds((k * 37 + j) % 5000), 200,
		       CASE WHEN j % 7 = 0 THEN 'undeliverable' WHEN j % 11 = 0 THEN 'processing' ELSE 'delivered' END,
		       0.05, 'UAH', 1
		FROM gen;
		INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM status_checks;`)

	_, doc := renderPage(t, db.DB, "many", report.Filter{})
	var total, others int64
	rows := chartShapes(t, doc, "delivery-rate")
	if len(rows) != 16 {
		t.Fatalf("delivery chart of 200 campaigns has %d bars, want 15 and one for the others", len(rows))
	}
	for i, n := range rows[:15] {
		if c, _ := attr(n, "data-campaign"); c != fmt.Sprintf("campaign-%03d", 199-i) {
			t.Errorf("bar %d is %q, want the campaigns by size, campaign-%03d", i, c, 199-i)
		}
	}
	if n, _ := attr(rows[15], "data-others"); n != "185" {
		t.Errorf("the last bar adds up %s campaigns, want 185", n)
	}
	for _, n := range chartShapes(t, doc, "status-mix") {
		v, _ := attr(n, "data-value")
		k, _ := strconv.ParseInt(v, 10, 64)
		total += k
		if _, ok := attr(n, "data-others"); ok {
			others += k
		}
	}
	if want := int64(200 * 201 / 2); total != want {
		t.Errorf("status mix adds up to %d messages, want %d", total, want)
	}
	if want := int64(185 * 186 / 2); others != want {
		t.Errorf("the others' status mix adds up to %d messages, want %d (campaigns 0..184)", others, want)
	}
	if n := len(chartShapes(t, doc, "cost-UAH")); n != 16 {
		t.Errorf("cost chart has %d bars, want 16", n)
	}
	if n := len(chartShapes(t, doc, "settlement")); n != 6 {
		t.Errorf("settlement chart has %d curves, want 6 (all and the 5 largest)", n)
	}

	_, doc = renderPage(t, db.DB, "one", report.Filter{Campaigns: []string{"campaign-150"}})
	rows = chartShapes(t, doc, "delivery-rate")
	if len(rows) != 1 {
		t.Fatalf("delivery chart of one campaign has %d bars, want 1", len(rows))
	}
	if n := len(chartShapes(t, doc, "settlement")); n != 1 {
		t.Errorf("settlement chart of one campaign has %d curves, want 1", n)
	}
}

// An empty selection makes a page that says so.
func TestPageEmptySelection(t *testing.T) {
	db, _ := fixtureDB(t)
	page, doc := renderPage(t, db.DB, "empty", report.Filter{Campaigns: []string{"nosuch"}})
	if !strings.Contains(page, "No message in the selection.") {
		t.Errorf("the page of an empty selection does not say it is empty")
	}
	if n := findAll(doc, func(n *html.Node) bool { return n.Data == "svg" }); len(n) != 0 {
		t.Errorf("the page of an empty selection has %d charts", len(n))
	}
}

func newDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "page.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *store.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// A message settles at its first check that saw a final status, however often it is
// asked after; a check before the sent time (clocks apart) counts as no delay.
func TestPageSettlementFirstFinalCheck(t *testing.T) {
	db := newDB(t)
	exec(t, db, `
		INSERT INTO runs (run_id, started_at, finished_at, outcome) VALUES (1, '2025-03-01 00:00:00+00', '2025-03-01 03:00:00+00', 'ok');
		INSERT INTO messages (message_id, campaign, first_loaded_at, run_id, sent_at) VALUES
		    ('a', 'c', '2025-03-01 00:00:00+00', 1, '2025-03-01 00:00:00+00'),
		    ('b', 'c', '2025-03-01 00:00:00+00', 1, '2025-03-01 01:00:00+00'),
		    ('d', 'c', '2025-03-01 00:00:00+00', 1, '2025-03-01 00:00:00+00');
		INSERT INTO status_checks (message_id, run_id, checked_at, http_status, deliverystatus, attempts) VALUES
		    ('a', 1, '2025-03-01 00:00:05+00', 200, 'processing', 1),
		    ('a', 1, '2025-03-01 00:00:30+00', 200, 'delivered', 1),
		    ('a', 1, '2025-03-01 02:00:00+00', 200, 'delivered', 1),
		    ('b', 1, '2025-03-01 00:10:00+00', 200, 'undeliverable', 1),
		    ('d', 1, '2025-03-01 02:00:00+00', 200, 'processing', 1);
		INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM status_checks
		QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY checked_at DESC) = 1;`)
	_, doc := renderPage(t, db.DB, "settle", report.Filter{})
	settled := findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == "settled-within" })
	var got []string
	for _, td := range findAll(settled[0], func(n *html.Node) bool { return n.Data == "td" }) {
		got = append(got, strings.TrimSpace(textOf(td)))
	}
	want := []string{"c", "3", "66.7%", "66.7%", "66.7%", "66.7%", "66.7%", "66.7%", "0%", "33.3%"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settled-within of a (final at 30 s, asked again at 2 h), b (checked before its sent time), d (never final) (-want +page):\n%s", diff)
	}
}
