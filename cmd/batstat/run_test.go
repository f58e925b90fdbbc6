package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// testEnv is an env on buffers, stdin holding in.
func testEnv(in string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &env{stdin: strings.NewReader(in), stdout: &stdout, stderr: &stderr}, &stdout, &stderr
}

// The run functions work from their options and env alone: fetch reads stdin and logs to
// stderr, query prints to stdout.
func TestRunFetchThenQuery(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	db := dbOptions{path: filepath.Join(t.TempDir(), "run.duckdb")}
	fetch := &fetchOptions{
		db:   db,
		log:  logOptions{json: true},
		auth: srv.Auth(smsbat.AuthHeader),
		config: ingest.Config{
			Client: srv.NewClient(t, smsbat.AuthHeader), APIURL: srv.URL, Inputs: []string{"-"},
			Concurrency: 2, Timeout: 5 * time.Second, Refresh: ingest.RefreshPending,
		},
	}
	e, stdout, stderr := testEnv("message_id,campaign\nm-1,c\nm-2,c\nm-3,c\n")
	if err := runFetch(context.Background(), fetch, e); err != nil {
		t.Fatalf("runFetch: %v\n%s", err, stderr)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), `"msg":"fetch finished"`) ||
		!strings.Contains(stderr.String(), `"answered":3`) {
		t.Errorf("runFetch wrote stdout %q, stderr:\n%s\nwant nothing on stdout and the summary on stderr", stdout, stderr)
	}

	query := &queryOptions{db: db, out: outputOptions{format: report.FormatCSV}, sql: "SELECT campaign, count(*) AS n FROM status_checks JOIN messages USING (message_id) GROUP BY ALL"}
	e, stdout, stderr = testEnv("")
	if err := runQuery(context.Background(), query, e); err != nil {
		t.Fatalf("runQuery: %v", err)
	}
	if got, want := stdout.String(), "campaign,n\nc,3\n"; got != want || stderr.Len() != 0 {
		t.Errorf("runQuery stdout = %q, stderr %q; want %q", got, stderr, want)
	}
}

// An input that cannot be read fails the fetch before the database is created.
func TestRunFetchOpensInputsFirst(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	fetch := &fetchOptions{
		db: dbOptions{path: filepath.Join(dir, "run.duckdb")},
		config: ingest.Config{
			Client: srv.NewClient(t, smsbat.AuthHeader), APIURL: srv.URL, Inputs: []string{filepath.Join(dir, "none.csv")},
			Concurrency: 2, Timeout: 5 * time.Second, Refresh: ingest.RefreshPending,
		},
	}
	e, _, _ := testEnv("")
	err := runFetch(context.Background(), fetch, e)
	if err == nil || !strings.Contains(err.Error(), "none.csv") || exitCode(err) != exitFatal {
		t.Errorf("runFetch of a missing file = %v, want exit 1 naming the file", err)
	}
	if _, serr := os.Stat(fetch.db.path); serr == nil {
		t.Errorf("runFetch of a missing file created %s", fetch.db.path)
	}
}

// The exit status of a status run is the first of 1 (an ID without an answer), 4 (an ID
// undelivered or not found) and 5 (an ID not terminal yet) that applies, else 0.
func TestStatusOutcome(t *testing.T) {
	answer := func(id, status string) ingest.MessageStatus {
		return ingest.MessageStatus{ID: id, Status: &smsbat.Status{DeliveryStatus: status}, Answers: 1}
	}
	failed := ingest.MessageStatus{ID: "f", Err: errors.New("gave up after 6 attempts: HTTP 500")}
	tests := []struct {
		name     string
		messages []ingest.MessageStatus
		code     int
		msg      string
	}{
		{"all delivered", []ingest.MessageStatus{answer("a", "delivered"), answer("b", "delivered")}, 0, ""},
		{"one pending", []ingest.MessageStatus{answer("a", "delivered"), answer("b", "processing")}, 5, "1 of 2 messages not terminal yet"},
		{"an unknown status is pending", []ingest.MessageStatus{answer("a", "read")}, 5, "a (read)"},
		{"scheduled", []ingest.MessageStatus{answer("a", "scheduled")}, 5, "a (scheduled)"},
		{"undeliverable", []ingest.MessageStatus{answer("a", "undeliverable")}, 4, "a (undeliverable)"},
		{"permanenterror", []ingest.MessageStatus{answer("a", "permanenterror")}, 4, "a (permanenterror)"},
		{"not found", []ingest.MessageStatus{answer("a", "not_found")}, 4, "a (not_found)"},
		{"undelivered outranks pending", []ingest.MessageStatus{answer("a", "processing"), answer("b", "undeliverable"), answer("c", "delivered")}, 4, "1 of 3 messages ended"},
		{"no answer outranks the rest", []ingest.MessageStatus{answer("a", "processing"), failed, answer("b", "not_found")}, 1, "f: gave up after 6 attempts: HTTP 500"},
		{"a failed ask after an answer", []ingest.MessageStatus{{ID: "a", Status: &smsbat.Status{DeliveryStatus: "processing"}, Err: errors.New("no answer")}}, 1, "a: no answer"},
		{"not asked", []ingest.MessageStatus{{ID: "a"}}, 1, "a: not asked"},
		{"at most five named", []ingest.MessageStatus{answer("a", "processing"), answer("b", "processing"), answer("c", "processing"),
			answer("d", "processing"), answer("e", "processing"), answer("f", "processing"), answer("g", "processing")}, 5, "e (processing), and 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := statusOutcome(&ingest.StatusRun{Messages: tt.messages}, 0)
			if code := exitCode(err); code != tt.code || (err != nil) != (tt.msg != "") || err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("statusOutcome = %v (exit %d), want exit %d and %q", err, code, tt.code, tt.msg)
			}
		})
	}
}

// runStatus prints one row per ID in the order given with the columns of the contract,
// the money exact, the currency and channel as the fake's answers give them.
func TestRunStatusRows(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{ExtendedRate: 0.6, NotFoundRate: 0.1, Currencies: []string{"UAH", "USD"}})
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("r-%02d", i))
	}
	o := &statusOptions{
		config: ingest.StatusConfig{Client: srv.NewClient(t, smsbat.AuthHeader), IDs: ids, Interval: time.Second},
		out:    outputOptions{format: report.FormatCSV},
	}
	e, stdout, _ := testEnv("")
	start := time.Now()
	err := runStatus(context.Background(), o, e)
	rows, rerr := csv.NewReader(stdout).ReadAll()
	if rerr != nil {
		t.Fatal(rerr)
	}
	if want := []string{"message_id", "deliverystatus", "cost", "currency", "channel", "checked_at"}; !cmp.Equal(rows[0], want) {
		t.Errorf("header = %q, want %q", rows[0], want)
	}
	var undelivered bool
	for i, id := range ids {
		row := rows[i+1]
		want := []string{id, "not_found", "", "", ""}
		if e := srv.Expected(id); !e.NotFound {
			s := e.Final.Status
			want = []string{id, s.DeliveryStatus, s.Cost.String(), s.Currency(), s.Channel()}
			if s.DeliveryStatus != smsbat.StatusDelivered {
				undelivered = true
			}
		} else {
			undelivered = true
		}
		if diff := cmp.Diff(want, row[:5]); diff != "" {
			t.Errorf("row %d (-want +got):\n%s", i+1, diff)
		}
		at, perr := time.Parse(time.RFC3339Nano, row[5])
		if perr != nil || at.Before(start.Truncate(time.Microsecond)) || at.After(time.Now()) {
			t.Errorf("row %d checked_at %q (%v), want a time of the run", i+1, row[5], perr)
		}
	}
	if !undelivered || exitCode(err) != exitUndelivered {
		t.Errorf("runStatus = %v (exit %d), want 4 for the undelivered among the IDs", err, exitCode(err))
	}
}

// The wait line of a terminal says how many messages are done and how long the wait may
// still last, and is erased at the end.
func TestWaitLine(t *testing.T) {
	var b bytes.Buffer
	l := startWaitLine(&b, 3, time.Now().Add(30*time.Second))
	l.progress(1, 3)
	l.stop()
	out := b.String()
	if !strings.Contains(out, "\rbatstat status: 0 of 3 done, waiting at most 30s more\033[K") ||
		!strings.Contains(out, "1 of 3 done") || !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("wait line wrote %q", out)
	}
	var none *waitLine
	none.stop() // no line: nothing to erase
}

// An interrupted status run prints and records what it learned, and exits as signalled.
func TestRunStatusInterruptedRecords(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	srv := smsbattest.NewServer(t, smsbattest.Options{StuckRate: 1, Hook: func(_ http.ResponseWriter, _ *http.Request, _ string, n int) bool {
		if n == 2 { // the second round
			cancel(&signalError{sig: syscall.SIGINT})
		}
		return false
	}})
	db := dbOptions{path: filepath.Join(t.TempDir(), "i.duckdb")}
	o := &statusOptions{
		config: ingest.StatusConfig{Client: srv.NewClient(t, smsbat.AuthHeader), IDs: []string{"i-1", "i-2"}, Wait: time.Minute, Interval: time.Second},
		out:    outputOptions{format: report.FormatCSV},
		record: true, db: db, campaign: "otp", apiURL: srv.URL,
	}
	e, stdout, _ := testEnv("")
	err := runStatus(ctx, o, e)
	if code := exitCode(err); code != exitInterrupted {
		t.Errorf("interrupted runStatus = %v (exit %d), want 130", err, code)
	}
	if !strings.Contains(stdout.String(), "i-1,processing,") || !strings.Contains(stdout.String(), "i-2,processing,") {
		t.Errorf("interrupted runStatus printed %q, want both messages", stdout)
	}
	sdb, err := store.Open(context.Background(), db.path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var outcome string
	var checks int
	if err := sdb.QueryRow(`SELECT outcome, (SELECT count(*) FROM status_checks) FROM runs`).Scan(&outcome, &checks); err != nil ||
		outcome != ingest.OutcomeInterrupted || checks < 2 {
		t.Errorf("recorded run %s with %d checks (%v), want interrupted with the answers received", outcome, checks, err)
	}
}
