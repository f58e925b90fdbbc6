package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/webhook"
)

// End to end, push against poll: a campaign sent a few seconds ago settles on the fake
// API's clock (30% at once, the rest around 3 s, all within 12 s). One fetch --watch polls
// until every message is final; another gets the same statuses pushed — the fake POSTs
// each change, with duplicates and out-of-order deliveries, to a `batstat webhook serve`
// child process — and runs with --webhook-spool on its spool. The second asks the API far
// less (requests counted at the fake server), and the delivery reports of both are equal.
func TestPushedStatusesSparePolls(t *testing.T) {
	if testing.Short() {
		t.Skip("two watches of a campaign that settles over seconds")
	}
	const n = 300
	sentAt := time.Now().Add(-4 * time.Second)
	settle := fakeapi.Settle{SentAt: sentAt, AtOnce: 0.3, Median: 3 * time.Second, Sigma: 0.6, Max: 12 * time.Second}
	newHandler := func() *smsbattest.Server {
		opts := fakeapi.DefaultOptions()
		opts.Seed = 11
		// not_found and statuses outside the lifecycle are not final: the watch would ask
		// them until --max-wait.
		opts.NotFoundRate, opts.UnknownStatusRate = 0, 0
		s := settle
		opts.Settle = &s
		return smsbattest.NewServer(t, opts)
	}
	type outcome struct {
		requests int64
		report   string
		stderr   string
	}
	watch := func(srv *smsbattest.Server, spool string) outcome {
		dir := t.TempDir()
		ids := writeIDs(t, dir, "camp.csv", n)
		db := filepath.Join(dir, "w.duckdb")
		args := []string{"fetch", "--db", db, "--rate", "0", "--api-url", srv.URL, "--api-key", fakeapi.DefaultAPIKey,
			"--watch", "--min-interval", "1s", "--max-wait", "90s", "--snapshot-every", "0"}
		if spool != "" {
			args = append(args, "--webhook-spool", spool)
		}
		r := runCLI(t, dir, "", append(args, ids)...)
		if r.code != 0 || !strings.Contains(r.stderr, "every message of the input has a final status") {
			t.Fatalf("fetch --watch (spool %q) = exit %d:\n%s", spool, r.code, r.stderr)
		}
		rep := runCLI(t, dir, "", "report", "--db", db, "--format", "csv", "delivery")
		if rep.code != 0 {
			t.Fatalf("report = exit %d: %s", rep.code, rep.stderr)
		}
		return outcome{requests: srv.Count(), report: rep.stdout, stderr: r.stderr}
	}

	// The pushed run's campaign: the receiver and the pusher start first, as they would
	// run all along in production.
	pushSrv := newHandler()
	spool := filepath.Join(t.TempDir(), "spool")
	rv := startReceiverProc(t, spool)
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("camp-%06d", i)) // as writeIDs names them
	}
	pusher, err := pushSrv.NewPusher(fakeapi.PushOptions{URL: rv.url + webhook.DefaultPath, IDs: ids,
		Duplicates: 0.1, Reorder: 0.2, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { pusher.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	// Wait until the changes that happened before now are in the spool.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := pusher.WaitSent(wctx, time.Now()); err != nil {
		t.Fatalf("the pusher did not deliver the changes already due: %v (%+v)", err, pusher.Stats())
	}

	var polled outcome
	var pwg sync.WaitGroup
	pwg.Go(func() { polled = watch(newHandler(), "") })
	pushed := watch(pushSrv, spool)
	pwg.Wait()

	ratio := float64(pushed.requests) / float64(polled.requests)
	t.Logf("API requests: %d polled only, %d with the spool (%.2f×)", polled.requests, pushed.requests, ratio)
	if ratio > 0.6 {
		t.Errorf("with the spool the watch made %d requests, %.2f× the %d of the polled run; want at most 0.6×\n%s",
			pushed.requests, ratio, polled.requests, pushed.stderr)
	}
	if pushed.report != polled.report {
		t.Errorf("delivery report with the spool:\n%s\nwant the polled run's:\n%s", pushed.report, polled.report)
	}
	if !strings.Contains(pushed.stderr, "webhook spool loaded") || !strings.Contains(pushed.stderr, "pushed_loaded=") {
		t.Errorf("the fetch did not say it loaded the spool:\n%s", pushed.stderr)
	}
	if _, err := os.Stat(spool); err != nil {
		t.Error(err)
	}
}

// demo --push runs the whole push path in the process: the fake API pushes every change to
// a webhook receiver, the fetch watches with its spool, and most messages are settled by
// a push rather than a poll; every message of the campaigns is in the reports.
func TestDemoPush(t *testing.T) {
	if testing.Short() {
		t.Skip("a watch of about fifteen seconds")
	}
	dir := t.TempDir()
	r := runCLI(t, dir, "", "demo", "--push", "--format", "json")
	if r.code != 0 {
		t.Fatalf("demo --push = exit %d:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"webhook spool loaded", "pushed_loaded=", "watch finished"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("demo --push stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	db := openTestDB(t, filepath.Join(dir, "batstat-demo.duckdb"))
	if n := queryInt(t, db, `SELECT count(*) FROM message_status`); n != 3000 {
		t.Errorf("message_status has %d messages, want 3000", n)
	}
	pushed := queryInt(t, db, `SELECT count(*) FROM status_latest WHERE source = 'webhook' AND is_terminal(deliverystatus)`)
	polled := queryInt(t, db, `SELECT count(*) FROM status_checks WHERE source = 'poll'`)
	if pushed < 2000 || polled >= 3000 {
		t.Errorf("%d messages settled by a push and %d polls; want most settled by push and fewer polls than messages", pushed, polled)
	}
}
