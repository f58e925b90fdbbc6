package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
	"github.com/batstat/batstat/webhook"
)

func fetchCommand(e *env, runF runFunc[*fetchOptions]) *cli.Command {
	if runF == nil {
		runF = runFetch
	}
	flags := []cli.Flag{dbFlag()}
	flags = append(flags, apiFlags()...)
	flags = append(flags,
		&cli.IntFlag{Name: "concurrency", Usage: "requests in flight at once", Value: 10},
		&cli.Float64Flag{Name: "rate", Usage: "requests per second, retries included (0 = unlimited)", Value: 10},
		&cli.IntFlag{Name: "burst", Usage: "token bucket size", DefaultText: "same as --rate"},
		&cli.StringFlag{Name: "campaign", Usage: "campaign `NAME` of every row (default: a campaign column, else the file name)"},
		&cli.StringFlag{Name: "id-column", Usage: "ID column `NAME` (default: messageId, msg_id, sms_id, message_uuid, uuid or id)"},
		&cli.StringFlag{Name: "campaign-column", Usage: "campaign column `NAME` (default: campaign)"},
		&cli.StringFlag{Name: "delimiter", Usage: `field separator: ",", ";", "\t" or "tab" (default: detected)`},
		&cli.StringFlag{Name: "refresh", Usage: "pending (messages without a terminal status), due (those the schedule says are due) or all", Value: string(ingest.RefreshPending)},
		&cli.BoolFlag{Name: "watch", Usage: "after the first pass, keep asking as messages fall due, until every message is final (or given up) or --max-wait"},
		&cli.DurationFlag{Name: "max-wait", Usage: "--watch: stop this long after the start, messages still pending or not", Value: ingest.DefaultMaxWait},
		&cli.DurationFlag{Name: "min-interval", Usage: "schedule: never ask a message again sooner (at least 1s)", Value: ingest.DefaultMinInterval},
		&cli.DurationFlag{Name: "max-interval", Usage: "schedule: never wait longer between two asks of a message", Value: ingest.DefaultMaxInterval},
		&cli.DurationFlag{Name: "give-up-after", Usage: "schedule: stop asking a message this long after it was sent", Value: ingest.DefaultGiveUpAfter},
		&cli.StringSliceFlag{Name: "webhook-spool", Usage: "load the pushed statuses spooled in `DIR` (batstat webhook serve --spool) before each pass, so that messages pushed a final status are not asked; repeatable"},
		&cli.BoolFlag{Name: "strict", Usage: "fail before any request if any input row is rejected"},
		&cli.BoolFlag{Name: "dry-run", Usage: "read and check the input and the database, print per campaign what a run would ask and how long that takes at --rate; ask nothing, write nothing"},
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
		metricsFlag(),
	)
	flags = append(flags, logFlags()...)
	flags = append(flags, resourceFlags(ingest.MemoryLimit)...)
	flags = append(flags, profileFlags()...)
	return withUsageErrors(&cli.Command{
		Name:      "fetch",
		Usage:     "read message IDs from CSV files and fetch their delivery statuses into the database",
		ArgsUsage: "FILE... (CSV, .csv.gz, a glob, or - for stdin)",
		Description: "A message without a final status is asked again once now - last check >=\n" +
			"clamp(age/4, --min-interval, --max-interval), age counted from its sent time (else from when it\n" +
			"was first loaded), and not at all once older than --give-up-after. --refresh due asks only the\n" +
			"messages due by that schedule; --watch keeps going by it until nothing is left to settle.\n" +
			"While it runs, report, query and export read the snapshot it publishes (--snapshot-every).\n" +
			"--webhook-spool DIR loads the statuses batstat webhook serve spooled there before each pass\n" +
			"(as batstat webhook load does): a message pushed a final status is not asked again.\n" +
			"--dry-run loads the input into a private copy of the database and prints what a run would ask;\n" +
			"it needs no credentials, asks nothing and leaves the database as it was.\n\n" +
			"Exit status: 0 every message has an answer (a --watch: also when it stops at --max-wait);\n" +
			"3 some messages still failed after their retries (the next run asks again); 1 fatal error\n" +
			"(credentials rejected, API unreachable, database or input unreadable); 2 bad usage (including\n" +
			"a credential that cannot be sent); 75 the database stayed in use by another process for\n" +
			"--lock-timeout (try again later); 130/143\n" +
			"interrupted by SIGINT/SIGTERM (after storing what was fetched).",
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
	profile       profileOptions
	// dryRun plans the run instead (see runDryRun).
	dryRun bool
}

// defaultSnapshotEvery is --snapshot-every's default: a reader's answer is at most a minute
// old, and a snapshot (a checkpoint and a copy of the file) costs the run little at that
// pace (BENCHMARKS.md, "Snapshots").
const defaultSnapshotEvery = time.Minute

// newFetchOptions turns fetch's flags and arguments into options. It reads --api-key-file
// and expands globs, but opens no input and no database.
func newFetchOptions(c *cli.Context, e *env) (*fetchOptions, error) {
	var err error
	dryRun := c.Bool("dry-run")
	if dryRun && c.IsSet("metrics-file") {
		// A dry run writes nothing, and its figures are no run's: an alert reading them would
		// take a preview for a cron run.
		return nil, usagef("--dry-run writes nothing: drop --metrics-file")
	}
	if e.metrics, err = newRunMetrics(c); err != nil {
		return nil, err
	}
	if c.NArg() == 0 {
		return nil, usagef("fetch: no input FILE given (use - for stdin)")
	}
	if err := flagsAfterArgs(c, "fetch", "FILE"); err != nil {
		return nil, err
	}
	o := &fetchOptions{noProgress: c.Bool("no-progress"), snapshotEvery: c.Duration("snapshot-every"), dryRun: dryRun}
	if o.profile, err = newProfileOptions(c); err != nil {
		return nil, err
	}
	if o.db, err = newDBOptions(c); err != nil {
		return nil, err
	}
	if o.log, err = newLogOptions(c); err != nil {
		return nil, err
	}
	var api apiOptions
	if dryRun && !hasCredentials(c) {
		// A preview asks nothing: it may be made before the credentials are at hand.
		api = apiOptions{url: c.String("api-url"), timeout: c.Duration("timeout"), retries: c.Int("retries")}
		if err := checkAPIURL(api.url, c.Bool("allow-insecure-http")); err != nil {
			return nil, err
		}
	} else if api, err = newAPIOptions(c, c.Int("concurrency")); err != nil {
		return nil, err
	}
	o.auth = api.auth
	cfg := ingest.Config{
		Client:       api.client,
		DryRun:       dryRun,
		APIURL:       api.url,
		Strict:       c.Bool("strict"),
		Concurrency:  c.Int("concurrency"),
		Rate:         c.Float64("rate"),
		Burst:        c.Int("burst"),
		Timeout:      api.timeout,
		Retries:      c.Int("retries"),
		Refresh:      ingest.Refresh(c.String("refresh")),
		Watch:        c.Bool("watch"),
		WebhookSpool: c.StringSlice("webhook-spool"),
		MaxWait:      c.Duration("max-wait"),
		Schedule: ingest.Schedule{
			MinInterval: c.Duration("min-interval"),
			MaxInterval: c.Duration("max-interval"),
			GiveUpAfter: c.Duration("give-up-after"),
		},
	}
	if err := checkScheduleFlags(c, cfg); err != nil {
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

// apiFlags are the flags of every command that asks the API: where it is, the credentials,
// how long one request may take and how often a failed one is retried.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api-url", Usage: "API base `URL`", EnvVars: []string{"SMSBAT_API_URL"}, Value: smsbat.DefaultBaseURL},
		&cli.StringFlag{Name: "api-key", Usage: "API `KEY`", EnvVars: []string{"SMSBAT_API_KEY"}},
		&cli.StringFlag{Name: "api-key-file", Usage: "read the API key from `FILE` (first line)"},
		&cli.StringFlag{Name: "username", Usage: "account user name (HTTP Basic)", EnvVars: []string{"SMSBAT_USERNAME"}},
		&cli.StringFlag{Name: "password", Usage: "account password (HTTP Basic)", EnvVars: []string{"SMSBAT_PASSWORD"}},
		&cli.StringFlag{Name: "auth", Usage: "header, basic or key-password (default: header with a key, basic with a username)"},
		&cli.BoolFlag{Name: "allow-insecure-http", Usage: "allow a plain http:// API URL to a non-loopback host (sends credentials in clear)"},
		&cli.DurationFlag{Name: "timeout", Usage: "per request", Value: ingest.DefaultTimeout},
		&cli.IntFlag{Name: "retries", Usage: "further attempts per message after the first", Value: 5},
	}
}

// hasCredentials says whether any credential was given, by flag or env.
func hasCredentials(c *cli.Context) bool {
	for _, name := range []string{"api-key", "api-key-file", "username", "password"} {
		if c.String(name) != "" {
			return true
		}
	}
	return false
}

// apiOptions are the apiFlags, checked, and the client they make. --timeout and --retries
// are read, not checked: each command checks them with its other numbers.
type apiOptions struct {
	url     string
	auth    smsbat.Auth // shown in logs (its String hides the secrets)
	timeout time.Duration
	retries int
	client  *smsbat.Client
}

// newAPIOptions reads the credentials (--api-key-file too) and makes a client for at most
// concurrency requests in flight, refusing credentials that cannot be sent and an API URL
// they must not be sent to.
func newAPIOptions(c *cli.Context, concurrency int) (apiOptions, error) {
	o := apiOptions{url: c.String("api-url"), timeout: c.Duration("timeout"), retries: c.Int("retries")}
	var err error
	if o.auth, err = authFromFlags(c); err != nil {
		return o, err
	}
	if o.client, err = smsbat.NewClient(o.url, o.auth, smsbat.NewHTTPClient(o.timeout, concurrency)); err != nil {
		return o, usagef("%v", err)
	}
	if err := checkAPIURL(o.url, c.Bool("allow-insecure-http")); err != nil {
		return o, err
	}
	return o, nil
}

// checkScheduleFlags refuses the flags of the schedule where nothing would use them: a
// flag that is silently ignored lets an operator believe a cron job waits or paces itself
// when it does not.
func checkScheduleFlags(c *cli.Context, cfg ingest.Config) error {
	if cfg.Watch {
		return nil
	}
	if c.IsSet("max-wait") {
		return usagef("--max-wait bounds a --watch; give --watch too")
	}
	if cfg.Refresh == ingest.RefreshDue {
		return nil
	}
	for _, name := range []string{"min-interval", "max-interval", "give-up-after"} {
		if c.IsSet(name) {
			return usagef("--%s is the schedule of --refresh due and --watch; give one of them too", name)
		}
	}
	return nil
}

// fetchFlags names the flag that sets each field of ingest.Config that comes from one.
var fetchFlags = map[string]string{
	"Concurrency":          "--concurrency",
	"Rate":                 "--rate",
	"Burst":                "--burst",
	"Timeout":              "--timeout",
	"Retries":              "--retries",
	"Refresh":              "--refresh",
	"MaxWait":              "--max-wait",
	"Schedule.MinInterval": "--min-interval",
	"Schedule.MaxInterval": "--max-interval",
	"Schedule.GiveUpAfter": "--give-up-after",
}

// fetchUsage turns the errors of ingest.Config.Validate into a usage error that names the
// flags.
func fetchUsage(err error) error { return configUsage("fetch", fetchFlags, err) }

// configUsage turns *ingest.ConfigError errors into a usage error of command cmd that names
// the flags, as flags maps them (the field "Inputs" and "IDs" are the arguments).
func configUsage(cmd string, flags map[string]string, err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = slices.Clone(j.Unwrap())
	}
	for i, err := range errs {
		var ce *ingest.ConfigError
		if !errors.As(err, &ce) {
			continue
		}
		switch flag, ok := flags[ce.Field]; {
		case ok:
			errs[i] = fmt.Errorf("%s %s: %s", flag, ce.Value, ce.Rule)
		case ce.Field == "Inputs" || ce.Field == "IDs":
			errs[i] = fmt.Errorf("%s: %s", cmd, strings.TrimPrefix(ce.Value+": "+ce.Rule, ": "))
		}
	}
	return &usageError{errors.Join(errs...)}
}

// fetchGCPercent is a fetch's GOGC when the environment sets none. Its Go heap stays at
// 3–4 MB however large the run (the answers wait in DuckDB, not in Go), which Go's
// default of 100 collects 40 times a second, for 5 % of the CPU; 200 halves the
// collections' share for a heap 3 MB larger, and 400 or more saves under 1 % more for
// 10–30 MB more of peak RSS (BENCHMARKS.md, "Throughput").
const fetchGCPercent = 200

// runFetch opens every input, then the database, and runs the fetch, or plans it for a
// dry run. A profile covers either: a dry run's load is the part of a fetch before its
// first request.
func runFetch(ctx context.Context, o *fetchOptions, e *env) error {
	stopProfile, err := o.profile.start()
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfile(); perr != nil {
			o.log.logger(e.stderr).Warn("profile not written", "err", perr)
		}
	}()
	if o.dryRun {
		return runDryRun(ctx, o, e)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(fetchGCPercent))
	}
	log := o.log.logger(e.stderr)
	cfg := o.config
	cfg.Stdin, cfg.Logger = e.stdin, log
	// A bar is not a log line: JSON logs get progress lines, as without a terminal.
	cfg.Progress = newProgress(e.stderr, e.stderrTTY && !o.noProgress && !o.log.json, log)
	job, err := ingest.NewJob(cfg)
	if err != nil {
		return err
	}
	defer job.Close()
	// A spool that is not there is an input that cannot be read, found before waiting for
	// the database.
	if len(cfg.WebhookSpool) > 0 {
		if _, err := webhook.SpoolFiles(cfg.WebhookSpool...); err != nil {
			return fmt.Errorf("--webhook-spool: %w", err)
		}
	}
	db, err := o.db.openWriter(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	attrs := []any{"db", db.Path, "api_url", cfg.APIURL, "auth", o.auth.String(),
		"inputs", len(cfg.Inputs), "concurrency", cfg.Concurrency, "rate", cfg.Rate, "refresh", string(cfg.Refresh)}
	if cfg.Watch {
		attrs = append(attrs, "watch", true, "max_wait_s", cfg.MaxWait.Seconds())
	}
	if cfg.Watch || cfg.Refresh == ingest.RefreshDue {
		// Durations in seconds: JSON logs get numbers, not nanoseconds.
		attrs = append(attrs, "min_interval_s", cfg.Schedule.MinInterval.Seconds(),
			"max_interval_s", cfg.Schedule.MaxInterval.Seconds(), "give_up_after_s", cfg.Schedule.GiveUpAfter.Seconds())
	}
	log.Info("fetch starting", attrs...)
	stopSnapshots := func() {}
	if o.snapshotEvery > 0 {
		stopSnapshots = db.PublishSnapshots(o.snapshotEvery, func(st store.SnapshotStats, err error) {
			logSnapshot(log, slog.LevelDebug, st, err)
		})
	}
	sum, err := job.Run(ctx, db)
	endProgress(cfg.Progress)
	stopSnapshots()
	if o.snapshotEvery > 0 && db.Changed() {
		// Also after an interrupt: the snapshot then holds what the run stored.
		st, serr := db.Snapshot(context.WithoutCancel(ctx))
		logSnapshot(log, slog.LevelInfo, st, serr)
	}
	if sum != nil {
		log.Info("fetch finished", sum.LogAttrs()...)
		if e.metrics != nil {
			e.metrics.responses = sum.Responses
			// The campaigns of the input, as they stand after the run; a run that loaded
			// nothing has none to tell.
			if len(sum.Campaigns) > 0 {
				if merr := e.metrics.collectDelivery(ctx, db, report.Filter{Campaigns: sum.Campaigns}); merr != nil {
					log.Warn("metrics: no campaign figures", "error", merr)
				}
			}
		}
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database %s: %w", db.Path, cerr)
	}
	if err != nil {
		return o.db.memoryHint(err)
	}
	if sum.Failing > 0 {
		return &partialError{failed: sum.Failing}
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
