package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat"
	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
	"github.com/batstat/batstat/webhook"
)

// demoMarker is written into batstat_meta so that demo only ever replaces a file it made.
const demoMarker = "demo"

func demoCommand(e *env, runF runFunc[*demoOptions]) *cli.Command {
	if runF == nil {
		runF = runDemo
	}
	return withUsageErrors(&cli.Command{
		Name:  "demo",
		Usage: "run the whole job on the sample campaigns against an in-process fake API and print the reports",
		Description: "Nothing to configure and no network: the fake SMSBAT API runs inside the process.\n" +
			"The database is recreated on every run; demo refuses to overwrite a file it did not create.\n" +
			"With --push the fake API also pushes every status change to a webhook receiver in the\n" +
			"process (as batstat webhook serve would take them), and the fetch watches the campaigns with\n" +
			"its spool (as fetch --watch --webhook-spool would): about fifteen seconds, polling only the\n" +
			"messages whose final status was not pushed yet.\n\n" +
			"Exit status: 0 ok; 1 fatal error (--db exists and was not made by demo); 2 bad usage;\n" +
			"75 the database was busy (try again later); 130/143 interrupted by SIGINT/SIGTERM.",
		Flags: append([]cli.Flag{
			// Not BATSTAT_DB: a demo must never write sample data into a production file.
			&cli.StringFlag{Name: "db", Usage: "DuckDB database `PATH` to (re)create", Value: "batstat-demo.duckdb"},
			&cli.StringFlag{Name: "format", Usage: "report format: table, json or markdown", Value: "table"},
			&cli.BoolFlag{Name: "push", Usage: "statuses settle on the clock and are also pushed (with duplicates and out-of-order deliveries) to an in-process webhook receiver; the fetch watches with its spool, polling only what was not pushed"},
		}, logFlags()...),
		Action: action(e, newDemoOptions, runF),
	})
}

// demoOptions are batstat demo's flags, checked.
type demoOptions struct {
	path   string
	format report.Format
	log    logOptions
	push   bool
}

func newDemoOptions(c *cli.Context, _ *env) (*demoOptions, error) {
	o := &demoOptions{path: c.String("db"), push: c.Bool("push")}
	var err error
	if o.format, err = parseFormat(c); err != nil {
		return nil, err
	}
	if o.format == report.FormatCSV {
		return nil, usagef("demo prints %d reports and csv holds one table: use --format table, json or markdown "+
			"(batstat report --format csv --output-dir DIR writes one file per report)", len(report.DefaultNames()))
	}
	if o.log, err = newLogOptions(c); err != nil {
		return nil, err
	}
	return o, nil
}

func runDemo(ctx context.Context, o *demoOptions, e *env) error {
	log := o.log.logger(e.stderr)
	path := o.path
	if err := removeDemoDB(ctx, path); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start the fake API: %w", err)
	}
	fakeOpts := fakeapi.DefaultOptions()
	if o.push {
		fakeOpts.Settle = demoSettle()
	}
	h := fakeapi.NewHandler(fakeOpts)
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	srvDone := make(chan error, 1)
	go func() { srvDone <- serve(srvCtx, ln, h) }()
	defer func() { stopSrv(); <-srvDone }()

	apiURL := "http://" + ln.Addr().String()
	client, err := smsbat.NewClient(apiURL,
		smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: fakeapi.DefaultAPIKey},
		smsbat.NewHTTPClient(5*time.Second, 16))
	if err != nil {
		return err
	}
	campaigns := batstat.DemoCampaigns()
	names, err := fs.Glob(campaigns, "*.csv")
	if err != nil || len(names) == 0 {
		return fmt.Errorf("demo: no embedded sample campaigns (%v)", err)
	}

	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetMeta(ctx, demoMarker, "true"); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfg := ingest.Config{
		Client: client, APIURL: apiURL, FS: campaigns, Inputs: names,
		Concurrency: 16, Rate: 0, Retries: 3, Timeout: 5 * time.Second,
		Logger: log,
	}
	cfg.Progress = newProgress(e.stderr, e.stderrTTY && !o.log.json, log)
	passes := 2
	if o.push {
		stopPush, spool, err := startDemoPush(ctx, h, campaigns, names, log)
		if err != nil {
			return err
		}
		defer stopPush()
		// One run that watches, as a cron job with the receiver beside it would.
		passes = 1
		cfg.WebhookSpool = []string{spool}
		cfg.Watch, cfg.MaxWait = true, time.Minute
		cfg.Schedule = ingest.Schedule{MinInterval: ingest.MinMinInterval, MaxInterval: 5 * time.Second,
			GiveUpAfter: demoGiveUpAfter}
	}
	// Two passes, as a cron job would make them: the first finds many messages still
	// scheduled; the second asks only those that have no terminal status yet.
	for pass := 1; pass <= passes; pass++ {
		sum, err := ingest.Fetch(ctx, db, cfg)
		if sum != nil {
			log.Info("fetch finished", append([]any{"pass", pass}, sum.LogAttrs()...)...)
		}
		if err != nil {
			return err
		}
	}

	defs, err := report.Defs("")
	if err != nil {
		return err
	}
	selected, err := report.Select(defs, report.DefaultNames()...)
	if err != nil {
		return err
	}
	var results []*report.Result
	for _, def := range selected {
		res, err := report.Run(ctx, db.DB, def, report.Filter{})
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if err := report.Render(e.stdout, o.format, results); err != nil {
		return err
	}
	if o.log.json {
		log.Info("demo database written", "db", path, "try", "batstat report --db "+path+" channels stuck runs")
		return nil
	}
	fmt.Fprintf(e.stderr, "\ndemo database: %s — try: batstat report --db %s channels stuck runs\n", path, path)
	return nil
}

// removeDemoDB deletes a previous demo database so each demo starts from nothing, and
// refuses to delete any file that demo did not create.
func removeDemoDB(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	db, err := store.Open(ctx, path, store.Options{ReadOnly: true})
	if store.IsLocked(err) {
		// Another process has it open: that is all there is to say (and it decides the
		// exit status), not that it is no demo database.
		return err
	}
	if err != nil {
		return fmt.Errorf("demo: %s exists and is not a demo database (%v); pass another --db", path, err)
	}
	_, ok, err := db.Meta(ctx, demoMarker)
	db.Close()
	if err != nil || !ok {
		return fmt.Errorf("demo: %s exists and was not made by batstat demo; refusing to overwrite it (pass another --db)", path)
	}
	for _, p := range []string{path, path + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("demo: remove old demo database: %w", err)
		}
	}
	return nil
}

// demoGiveUpAfter is when demo --push stops asking a message: the stuck and unknown ones
// never settle, and the watch ends once only they are left.
const demoGiveUpAfter = 15 * time.Second

// demoSettle is demo --push's lifecycle on the clock: the campaign was sent three seconds
// before the demo starts; 30% final at once, the rest around 2 s, all within 10 s.
func demoSettle() *fakeapi.Settle {
	return &fakeapi.Settle{SentAt: time.Now().Add(-3 * time.Second), AtOnce: 0.3, Never: 0.03,
		Median: 2 * time.Second, Sigma: 0.8, Max: 10 * time.Second}
}

// startDemoPush starts a webhook receiver in the process, on a spool in a temp directory,
// and the fake API's pusher of the campaigns' status changes to it; it returns once the
// changes that happened before the demo started are in the spool, so the fetch's first
// pass already leaves them out. stop ends both and removes the spool.
func startDemoPush(ctx context.Context, h *fakeapi.Handler, campaigns fs.FS, names []string, log *slog.Logger) (stop func(), spool string, err error) {
	spool, err = os.MkdirTemp("", "batstat-demo-spool-")
	if err != nil {
		return nil, "", fmt.Errorf("demo: spool: %w", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	rv, err := webhook.NewReceiver(webhook.Config{Spool: spool, Logger: quiet})
	if err != nil {
		os.RemoveAll(spool)
		return nil, "", fmt.Errorf("demo: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rv.Close()
		os.RemoveAll(spool)
		return nil, "", fmt.Errorf("demo: start the webhook receiver: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { rv.Serve(runCtx, ln) })
	stop = func() {
		cancel()
		wg.Wait()
		os.RemoveAll(spool)
	}
	var ids []string
	for _, name := range names {
		f, err := campaigns.Open(name)
		if err != nil {
			stop()
			return nil, "", fmt.Errorf("demo: %w", err)
		}
		more, err := readPushIDs([]string{"-"}, f)
		f.Close()
		if err != nil {
			stop()
			return nil, "", fmt.Errorf("demo: %s: %w", name, err)
		}
		ids = append(ids, more...)
	}
	p, err := h.NewPusher(fakeapi.PushOptions{URL: "http://" + ln.Addr().String() + webhook.DefaultPath, IDs: ids,
		Duplicates: 0.05, Reorder: 0.1, Concurrency: 8, Logger: log})
	if err != nil {
		stop()
		return nil, "", fmt.Errorf("demo: %w", err)
	}
	wg.Go(func() { p.Run(runCtx) })
	// The changes of the past (the campaign was sent before the demo started) first.
	wctx, stopWaiting := context.WithTimeout(ctx, 30*time.Second)
	err = p.WaitSent(wctx, time.Now())
	stopWaiting()
	if err != nil && ctx.Err() != nil {
		stop()
		return nil, "", context.Cause(ctx)
	}
	log.Info("webhook receiver and pusher started", "spool", spool, "changes_to_push", len(p.Schedule()),
		"pushed_before_fetch", p.Stats().Delivered)
	return stop, spool, nil
}
