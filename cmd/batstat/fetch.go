package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

func fetchCommand(e *env, runF runFunc[*fetchOptions]) *cli.Command {
	if runF == nil {
		runF = runFetch
	}
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringFlag{Name: "api-url", Usage: "API base `URL`", EnvVars: []string{"SMSBAT_API_URL"}, Value: smsbat.DefaultBaseURL},
		&cli.StringFlag{Name: "api-key", Usage: "API `KEY`", EnvVars: []string{"SMSBAT_API_KEY"}},
		&cli.StringFlag{Name: "api-key-file", Usage: "read the API key from `FILE` (first line)"},
		&cli.StringFlag{Name: "username", Usage: "account user name (HTTP Basic)", EnvVars: []string{"SMSBAT_USERNAME"}},
		&cli.StringFlag{Name: "password", Usage: "account password (HTTP Basic)", EnvVars: []string{"SMSBAT_PASSWORD"}},
		&cli.StringFlag{Name: "auth", Usage: "header, basic or key-password (default: header with a key, basic with a username)"},
		&cli.BoolFlag{Name: "allow-insecure-http", Usage: "allow a plain http:// API URL to a non-loopback host (sends credentials in clear)"},
		&cli.IntFlag{Name: "concurrency", Usage: "requests in flight at once", Value: 10},
		&cli.Float64Flag{Name: "rate", Usage: "requests per second, retries included (0 = unlimited)", Value: 10},
		&cli.IntFlag{Name: "burst", Usage: "token bucket size (default: same as --rate)"},
		&cli.DurationFlag{Name: "timeout", Usage: "per request", Value: ingest.DefaultTimeout},
		&cli.IntFlag{Name: "retries", Usage: "further attempts per message after the first", Value: 5},
		&cli.StringFlag{Name: "campaign", Usage: "campaign `NAME` of every row (default: a campaign column, else the file name)"},
		&cli.StringFlag{Name: "id-column", Usage: "ID column `NAME` (default: messageId, msg_id, sms_id, message_uuid, uuid or id)"},
		&cli.StringFlag{Name: "campaign-column", Usage: "campaign column `NAME` (default: campaign)"},
		&cli.StringFlag{Name: "delimiter", Usage: `field separator: ",", ";", "\t" or "tab" (default: detected)`},
		&cli.StringFlag{Name: "refresh", Usage: "pending (messages without a terminal status) or all", Value: string(ingest.RefreshPending)},
		&cli.BoolFlag{Name: "strict", Usage: "fail before any request if any input row is rejected"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar even on a terminal (log lines instead)"},
		&cli.DurationFlag{Name: "snapshot-every", Value: defaultSnapshotEvery,
			Usage: "while answers arrive, publish a read-only snapshot PATH.snapshot for readers every `D`, and at the end (0 = off)",
			Action: func(_ *cli.Context, d time.Duration) error {
				if d < 0 {
					return usagef("--snapshot-every %s: must not be negative (0 turns snapshots off)", d)
				}
				return nil
			}},
		lockTimeoutFlag(writerLockTimeout, "(a report or query)"),
	}
	flags = append(flags, logFlags()...)
	flags = append(flags, resourceFlags(ingest.MemoryLimit)...)
	return withUsageErrors(&cli.Command{
		Name:      "fetch",
		Usage:     "read message IDs from CSV files and fetch their delivery statuses into the database",
		ArgsUsage: "FILE... (CSV, .csv.gz, a glob, or - for stdin)",
		Description: "While it runs, report, query and export read the snapshot it publishes (--snapshot-every).\n\n" +
			"Exit status: 0 every message has an answer; 3 some messages still failed after their\n" +
			"retries; 1 fatal error; 2 bad usage; 75 the database stayed in use by another process for\n" +
			"--lock-timeout (try again later); 130/143 interrupted (after flushing what was fetched).",
		Flags:  flags,
		Action: action(e, newFetchOptions, runF),
	})
}

// fetchOptions are batstat fetch's flags and arguments, checked.
type fetchOptions struct {
	db  dbOptions
	log logOptions
	// auth is shown in the log (its String hides the secrets); config.Client sends it.
	auth smsbat.Auth
	// config is the run's configuration, validated, but for what comes from the env:
	// Stdin, Logger and Progress.
	config     ingest.Config
	noProgress bool
	// snapshotEvery is how often a snapshot is published while the run writes; 0 = never.
	snapshotEvery time.Duration
}

// defaultSnapshotEvery is --snapshot-every's default: a reader's answer is at most a minute
// old, and a snapshot (a checkpoint and a copy of the file) costs the run little at that
// pace (BENCHMARKS.md, "Snapshots").
const defaultSnapshotEvery = time.Minute

// newFetchOptions turns fetch's flags and arguments into options. It reads --api-key-file
// and expands globs, but opens no input and no database.
func newFetchOptions(c *cli.Context, _ *env) (*fetchOptions, error) {
	if c.NArg() == 0 {
		return nil, usagef("fetch: no input FILE given (use - for stdin)")
	}
	o := &fetchOptions{db: newDBOptions(c), noProgress: c.Bool("no-progress"), snapshotEvery: c.Duration("snapshot-every")}
	var err error
	if o.log, err = newLogOptions(c); err != nil {
		return nil, err
	}
	if o.auth, err = authFromFlags(c); err != nil {
		return nil, err
	}
	apiURL := c.String("api-url")
	cfg := ingest.Config{
		APIURL:      apiURL,
		Strict:      c.Bool("strict"),
		Concurrency: c.Int("concurrency"),
		Rate:        c.Float64("rate"),
		Burst:       c.Int("burst"),
		Timeout:     c.Duration("timeout"),
		Retries:     c.Int("retries"),
		Refresh:     ingest.Refresh(c.String("refresh")),
	}
	cfg.Client, err = smsbat.NewClient(apiURL, o.auth, smsbat.NewHTTPClient(cfg.Timeout, cfg.Concurrency))
	if err != nil {
		return nil, usagef("%v", err)
	}
	if err := checkAPIURL(apiURL, c.Bool("allow-insecure-http")); err != nil {
		return nil, err
	}
	if cfg.Read, err = readOptions(c); err != nil {
		return nil, err
	}
	if cfg.Inputs, err = idlist.Expand(c.Args().Slice()); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fetchUsage(err)
	}
	o.config = cfg
	return o, nil
}

// fetchFlags names the flag that sets each field of ingest.Config that comes from one.
var fetchFlags = map[string]string{
	"Concurrency": "--concurrency",
	"Rate":        "--rate",
	"Burst":       "--burst",
	"Timeout":     "--timeout",
	"Retries":     "--retries",
	"Refresh":     "--refresh",
}

// fetchUsage turns the errors of ingest.Config.Validate into a usage error that names the
// flags.
func fetchUsage(err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = slices.Clone(j.Unwrap())
	}
	for i, err := range errs {
		var ce *ingest.ConfigError
		if !errors.As(err, &ce) {
			continue
		}
		switch flag, ok := fetchFlags[ce.Field]; {
		case ok:
			errs[i] = fmt.Errorf("%s %s: %s", flag, ce.Value, ce.Rule)
		case ce.Field == "Inputs":
			errs[i] = fmt.Errorf("fetch: %s", ce.Rule)
		}
	}
	return &usageError{errors.Join(errs...)}
}

// runFetch opens every input, then the database, and runs the fetch.
func runFetch(ctx context.Context, o *fetchOptions, e *env) error {
	log := o.log.logger(e.stderr)
	cfg := o.config
	cfg.Stdin, cfg.Logger = e.stdin, log
	cfg.Progress = newProgress(e.stderr, e.stderrTTY && !o.noProgress, log)
	job, err := ingest.NewJob(cfg)
	if err != nil {
		return err
	}
	defer job.Close()

	db, err := o.db.openWriter(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("fetch starting", "db", db.Path, "api_url", cfg.APIURL, "auth", o.auth.String(),
		"inputs", len(cfg.Inputs), "concurrency", cfg.Concurrency, "rate", cfg.Rate)
	stopSnapshots := func() {}
	if o.snapshotEvery > 0 {
		stopSnapshots = db.PublishSnapshots(o.snapshotEvery, func(st store.SnapshotStats, err error) {
			logSnapshot(log, slog.LevelDebug, st, err)
		})
	}
	sum, err := job.Run(ctx, db)
	stopSnapshots()
	if o.snapshotEvery > 0 && db.Changed() {
		// Also after an interrupt: the snapshot then holds what the run stored.
		st, serr := db.Snapshot(context.WithoutCancel(ctx))
		logSnapshot(log, slog.LevelInfo, st, serr)
	}
	if sum != nil {
		log.Info("fetch finished", sum.LogAttrs()...)
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database %s: %w", db.Path, cerr)
	}
	if err != nil {
		return o.db.memoryHint(err)
	}
	if sum.Failed > 0 {
		return &partialError{failed: sum.Failed}
	}
	return nil
}

// logSnapshot logs a published snapshot at level, or why it was not published. A snapshot
// that fails does not fail the run: the readers keep the last one.
func logSnapshot(log *slog.Logger, level slog.Level, st store.SnapshotStats, err error) {
	if err != nil {
		log.Warn("snapshot not published", "err", err)
		return
	}
	log.Log(context.Background(), level, "snapshot published", "path", st.Path, "bytes", st.Bytes,
		"writes_held", st.Held.Round(time.Microsecond), "checkpoint", st.Checkpoint.Round(time.Microsecond),
		"took", st.Took.Round(time.Microsecond))
}

// authFromFlags picks the credentials and the auth mode. Secrets never leave this function
// except inside smsbat.Auth, whose String hides them.
func authFromFlags(c *cli.Context) (smsbat.Auth, error) {
	a := smsbat.Auth{
		APIKey:   c.String("api-key"),
		Username: c.String("username"),
		Password: c.String("password"),
	}
	if f := c.String("api-key-file"); f != "" {
		if c.IsSet("api-key") {
			return a, usagef("give --api-key or --api-key-file, not both")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return a, fmt.Errorf("api key file: %w", err)
		}
		key, _, _ := strings.Cut(string(b), "\n")
		a.APIKey = strings.TrimSpace(key)
		if a.APIKey == "" {
			return a, fmt.Errorf("api key file %s: empty", f)
		}
	}
	switch mode := c.String("auth"); {
	case mode != "":
		a.Mode = smsbat.AuthMode(mode)
	case a.APIKey != "":
		a.Mode = smsbat.AuthHeader
	case a.Username != "":
		a.Mode = smsbat.AuthBasic
	default:
		return a, usagef("no credentials: give --api-key, --api-key-file or --username/--password (or SMSBAT_API_KEY, SMSBAT_USERNAME/SMSBAT_PASSWORD)")
	}
	if err := a.Validate(); err != nil {
		return a, usagef("%v", err)
	}
	return a, nil
}

// checkAPIURL refuses credentials in the URL and plain http to anything but loopback: the
// credentials travel with every request. That it is an http(s) URL with a host is
// smsbat.NewClient's to check.
func checkAPIURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return usagef("--api-url %q: %v", raw, err)
	}
	if u.User != nil {
		return usagef("--api-url: put credentials in --username/--password or --api-key, not in the URL")
	}
	if u.Scheme == "https" || allowInsecure {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usagef("--api-url %s: plain http to a non-loopback host would send credentials in clear; use https or --allow-insecure-http", raw)
}

func readOptions(c *cli.Context) (idlist.Options, error) {
	o := idlist.Options{
		IDColumn:       c.String("id-column"),
		CampaignColumn: c.String("campaign-column"),
		Campaign:       c.String("campaign"),
	}
	d, err := idlist.ParseDelimiter(c.String("delimiter"))
	if err != nil {
		return o, usagef("--%v", err)
	}
	o.Delimiter = d
	return o, nil
}
