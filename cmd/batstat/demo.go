package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat"
	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
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
			"The database is recreated on every run; demo refuses to overwrite a file it did not create.\n\n" +
			"Exit status: 0 ok; 1 fatal error; 2 bad usage; 75 the demo database is in use by another\n" +
			"process (try again later); 130/143 interrupted.",
		Flags: append([]cli.Flag{
			// Not BATSTAT_DB: a demo must never write sample data into a production file.
			&cli.StringFlag{Name: "db", Usage: "DuckDB database `PATH` to (re)create", Value: "batstat-demo.duckdb"},
			&cli.StringFlag{Name: "format", Usage: "report format: table, csv, json or markdown", Value: "table"},
		}, logFlags()...),
		Action: action(e, newDemoOptions, runF),
	})
}

// demoOptions are batstat demo's flags, checked.
type demoOptions struct {
	path   string
	format report.Format
	log    logOptions
}

func newDemoOptions(c *cli.Context, _ *env) (*demoOptions, error) {
	o := &demoOptions{path: c.String("db")}
	var err error
	if o.format, err = parseFormat(c); err != nil {
		return nil, err
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
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	srvDone := make(chan error, 1)
	go func() { srvDone <- serve(srvCtx, ln, fakeapi.NewHandler(fakeapi.DefaultOptions())) }()
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
	cfg.Progress = newProgress(e.stderr, e.stderrTTY, log)
	// Two passes, as a cron job would make them: the first finds many messages still
	// scheduled; the second asks only those that have no terminal status yet.
	for pass := 1; pass <= 2; pass++ {
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
		return fmt.Errorf("demo: %w", err) // busy, not foreign: exit 75
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
