package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
)

// countingProxy forwards to the API at target and counts the requests it passes on (the
// API answers every one: with no faults each is a status_checks row to be), and closes
// reached when it has passed n.
func countingProxy(t *testing.T, target string, n int64) (proxyURL string, requests *atomic.Int64, reached <-chan struct{}) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	requests = &atomic.Int64{}
	ch := make(chan struct{})
	p := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == n {
			close(ch)
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests, ch
}

// quickSettleFlags put mock-server's statuses on the clock, quickly: final within seconds.
var quickSettleFlags = []string{"--not-found-rate", "0", "--settle-at-once", "0.3", "--settle-median", "1s",
	"--settle-sigma", "0.5", "--settle-max", "4s"}

// A --watch interrupted in a later pass, with requests in flight, exits 130 and has stored
// every answer the API gave, in one interrupted run.
func TestWatchInterruptedLosesNothing(t *testing.T) {
	// With 50 ms of latency, requests are in flight whenever the signal comes.
	_, api, _ := startMockServer(t, append(quickSettleFlags, "--settle-never", "0.2", "--latency", "50ms")...)
	const n = 300
	// The first pass asks all 300 at 100/s; stop in a later one.
	proxy, requests, reached := countingProxy(t, api, n+60)
	dir := t.TempDir()
	cmd, stderr, dbPath := startFetch(t, proxy, dir, n, "--watch", "--min-interval", "1s", "--rate", "100")
	waitFor(t, reached, "a pass after the first")
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("fetch --watch after SIGINT: %v, want exit 130; stderr:\n%s", err, stderr)
	}
	db := openTestDB(t, dbPath)
	stored := queryInt(t, db, "SELECT count(*) FROM status_checks")
	if got := requests.Load(); stored != got || stored <= n {
		t.Errorf("stored %d answers to %d requests: want all, past the first pass", stored, got)
	}
	var outcome string
	var answered, runs int64
	db.QueryRow("SELECT outcome, answered, (SELECT count(*) FROM runs) FROM runs").Scan(&outcome, &answered, &runs)
	if outcome != "interrupted" || answered != stored || runs != 1 {
		t.Errorf("runs: %d rows, outcome %s, answered %d; want one interrupted run with %d answered", runs, outcome, answered, stored)
	}
}

// A --watch ends by itself: exit 0 once every message is final, or at --max-wait with the
// messages still pending named in the log.
func TestWatchEndsByItself(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"all final", []string{"--settle-never", "0"}, "watch finished: every message of the input has a final status"},
		{"max wait", []string{"--settle-never", "0.5", "--max-wait", "3s"}, "watch stopped at its maximum wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srvArgs, fetchArgs []string
			for i := 0; i < len(tt.args); i += 2 {
				if strings.HasPrefix(tt.args[i], "--settle") {
					srvArgs = append(srvArgs, tt.args[i:i+2]...)
				} else {
					fetchArgs = append(fetchArgs, tt.args[i:i+2]...)
				}
			}
			_, api, _ := startMockServer(t, append(quickSettleFlags, srvArgs...)...)
			dir := t.TempDir()
			ids := writeIDs(t, dir, "camp.csv", 50)
			expectKnownFinals(t, ids)
			db := filepath.Join(dir, "w.duckdb")
			args := append([]string{"fetch", "--db", db, "--api-url", api, "--api-key", fakeapi.DefaultAPIKey,
				"--rate", "0", "--watch", "--min-interval", "1s"}, fetchArgs...)
			r := runCLI(t, dir, "", append(args, ids)...)
			if r.code != 0 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("fetch --watch = exit %d, stderr:\n%s\nwant exit 0 and %q", r.code, r.stderr, tt.want)
			}
			pending := queryInt(t, openTestDB(t, db), "SELECT count(*) FROM message_status WHERE NOT is_terminal(deliverystatus)")
			if !strings.Contains(r.stderr, "pending="+strconv.FormatInt(pending, 10)) || (tt.name == "all final") != (pending == 0) {
				t.Errorf("%d messages pending at the end; the log says:\n%s", pending, r.stderr)
			}
		})
	}
}

// expectKnownFinals fails the test unless every ID of the file that settles ends in a
// terminal status at mock-server (seed 1, the default): a final status outside the
// lifecycle would keep a watch going to --max-wait.
func expectKnownFinals(t *testing.T, file string) {
	t.Helper()
	opts := fakeapi.DefaultOptions()
	opts.NotFoundRate = 0
	opts.Settle = &fakeapi.Settle{}
	h := fakeapi.NewHandler(opts)
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range strings.Fields(string(text))[1:] {
		if st := h.Expected(id).Final.Status; st == nil || !smsbat.IsTerminal(st.DeliveryStatus) {
			t.Fatalf("%s ends as %v at mock-server: pick other IDs", id, st)
		}
	}
}
