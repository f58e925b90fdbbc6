package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
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
