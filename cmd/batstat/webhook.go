package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/webhook"
)

// webhookCommand groups the commands of pushed statuses.
func webhookCommand(e *env) *cli.Command {
	return withUsageErrors(&cli.Command{
		Name:  "webhook",
		Usage: "take in the statuses the provider pushes, instead of polling for them",
		Subcommands: []*cli.Command{
			webhookServeCommand(e, nil),
			webhookLoadCommand(e, nil),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("webhook: unknown command %q (see batstat webhook --help)", c.Args().First())
			}
			cli.ShowSubcommandHelp(c)
			return usagef("webhook: no command given")
		},
	})
}

func webhookServeCommand(e *env, runF runFunc[*webhookServeOptions]) *cli.Command {
	if runF == nil {
		runF = runWebhookServe
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Usage: "`ADDR` to listen on (host:port)"},
		&cli.StringFlag{Name: "spool", Usage: "spool `DIR` the events are appended to (created if missing)"},
		&cli.StringFlag{Name: "token", Usage: "require `T` as \"Authorization: Bearer T\" or ?token=T", EnvVars: []string{"BATSTAT_WEBHOOK_TOKEN"}},
		&cli.StringFlag{Name: "path", Usage: "URL `PATH` events are POSTed to", Value: webhook.DefaultPath},
		&cli.Int64Flag{Name: "max-body", Usage: "largest request body in `BYTES`; larger ones get 413", Value: webhook.DefaultMaxBody},
		&cli.DurationFlag{Name: "read-timeout", Usage: "time to read a request, body included; a slower client gets 408", Value: webhook.DefaultReadTimeout},
		&cli.IntFlag{Name: "max-in-flight", Usage: "requests handled at once; others wait a few seconds, then get 503", Value: webhook.DefaultMaxInFlight},
	}
	flags = append(flags, logFlags()...)
	return withUsageErrors(&cli.Command{
		Name:  "serve",
		Usage: "receive pushed statuses over HTTP and append them to a spool directory",
		Description: "Accepts POST PATH with one event {\"messageId\",\"deliverystatus\",\"timestamp\",\"cost\"} or a\n" +
			"JSON array of them, and answers 200 {\"accepted\":N} only once they are appended to\n" +
			"DIR/events-YYYYMMDDTHH.ndjson (UTC hour of receipt) and fsynced; concurrent requests share\n" +
			"one fsync. messageId, deliverystatus and timestamp (RFC 3339) are required, cost is\n" +
			"optional (at most six decimals). A batch with any bad event is refused whole (400, nothing\n" +
			"stored). 401 without the token, 405 other methods, 413 over --max-body, 404 other paths;\n" +
			"GET /healthz answers 200. It never opens the database. Serve it behind a TLS reverse proxy.\n" +
			"One access log line per request on stderr, never with the token.\n\n" +
			"Exit status: 0 stopped by SIGTERM or SIGINT, after the requests in flight were answered\n" +
			"and their events stored; 1 cannot listen, or the spool is unusable or in use by another\n" +
			"receiver; 2 bad usage.",
		Flags:  flags,
		Action: action(e, newWebhookServeOptions, runF),
	})
}

// webhookServeOptions are batstat webhook serve's flags, checked.
type webhookServeOptions struct {
	listen string
	log    logOptions
	// config is the receiver's configuration, validated but for Logger.
	config webhook.Config
}

// webhookFlags names the flag that sets each field of webhook.Config.
var webhookFlags = map[string]string{
	"Spool":       "--spool",
	"Token":       "--token",
	"Path":        "--path",
	"MaxBody":     "--max-body",
	"ReadTimeout": "--read-timeout",
	"MaxInFlight": "--max-in-flight",
}

func newWebhookServeOptions(c *cli.Context, _ *env) (*webhookServeOptions, error) {
	if c.NArg() > 0 {
		return nil, usagef("webhook serve takes no arguments (got %q)", c.Args().First())
	}
	for _, name := range []string{"listen", "spool"} {
		if c.String(name) == "" {
			return nil, usagef("webhook serve: --%s is required", name)
		}
	}
	o := &webhookServeOptions{listen: c.String("listen")}
	var err error
	if o.log, err = newLogOptions(c); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return nil, usagef("--listen %q: want host:port, e.g. 127.0.0.1:8090", o.listen)
	}
	o.config = webhook.Config{
		Spool:       c.String("spool"),
		Token:       c.String("token"),
		Path:        c.String("path"),
		MaxBody:     c.Int64("max-body"),
		ReadTimeout: c.Duration("read-timeout"),
		MaxInFlight: c.Int("max-in-flight"),
	}
	// The write timeout covers the body too (it counts from the end of the header).
	o.config.WriteTimeout = max(webhook.DefaultWriteTimeout, 2*o.config.ReadTimeout)
	for name, bad := range map[string]bool{
		"--max-body":      o.config.MaxBody <= 0,
		"--read-timeout":  o.config.ReadTimeout <= 0,
		"--max-in-flight": o.config.MaxInFlight <= 0,
	} {
		if bad {
			return nil, usagef("%s %v: must be positive", name, c.Value(strings.TrimPrefix(name, "--")))
		}
	}
	if err := o.config.Validate(); err != nil {
		return nil, webhookUsage(err)
	}
	return o, nil
}

// webhookUsage turns the errors of webhook.Config.Validate into a usage error naming the
// flags.
func webhookUsage(err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	msgs := make([]string, 0, len(errs))
	for _, err := range errs {
		var ce *webhook.ConfigError
		if errors.As(err, &ce) {
			if flag, ok := webhookFlags[ce.Field]; ok {
				msgs = append(msgs, fmt.Sprintf("%s %v: %s", flag, ce.Value, ce.Rule))
				continue
			}
		}
		msgs = append(msgs, err.Error())
	}
	return usagef("%s", strings.Join(msgs, "\n"))
}

// runWebhookServe opens the spool, listens, and serves until a signal; a signal is the
// way this command is meant to stop, so it returns nil (exit 0) once the requests in
// flight are answered.
func runWebhookServe(ctx context.Context, o *webhookServeOptions, e *env) error {
	log := o.log.logger(e.stderr)
	cfg := o.config
	cfg.Logger = log
	rv, err := webhook.NewReceiver(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		rv.Close()
		return fmt.Errorf("webhook serve: %w", err)
	}
	// Scripts and tests wait for this message before they connect.
	log.Info("webhook receiver listening on http://"+ln.Addr().String()+cfg.Path,
		"spool", cfg.Spool, "token", cfg.Token != "", "max_body", cfg.MaxBody)
	return rv.Serve(ctx, ln)
}

func webhookLoadCommand(e *env, runF runFunc[*webhookLoadOptions]) *cli.Command {
	if runF == nil {
		runF = runWebhookLoad
	}
	flags := []cli.Flag{dbFlag(), lockTimeoutFlag(writerLockTimeout, "(a report or query)"),
		&cli.BoolFlag{Name: "from-start", Usage: "read every file from its first line, not from where the last load stopped (for a file replaced or cut since; events stored already are skipped)"}}
	flags = append(flags, logFlags()...)
	flags = append(flags, resourceFlags(ingest.MemoryLimit)...)
	return withUsageErrors(&cli.Command{
		Name:      "load",
		Usage:     "load spooled pushed statuses into the database (status_checks, source 'webhook')",
		ArgsUsage: "DIR|FILE... (a spool directory stands for its events-YYYYMMDDTHH.ndjson files)",
		Description: "Each event becomes a status_checks row with source 'webhook', checked_at its timestamp\n" +
			"and received_at when the receiver got it. Each file is read from where the last load stopped,\n" +
			"so loading the same spool twice adds nothing; an event stored already (the provider's\n" +
			"duplicate deliveries) is left out. Events of IDs that no campaign has loaded yet are kept\n" +
			"and join their campaign once a fetch loads its list. A terminal status is never replaced\n" +
			"by a later non-terminal one. Lines that are not events, and the incomplete last line of a\n" +
			"file being written, are skipped and listed (FILE:LINE) on stderr; a later load reads an\n" +
			"incomplete line again once it is whole. A file replaced or cut since the last load cannot be\n" +
			"resumed: it fails until loaded with --from-start. The summary is logged on stderr.\n\n" +
			"Exit status: 0 loaded (skipped lines included); 1 fatal error (a spool file or the\n" +
			"database unreadable); 2 bad usage; 75 the database stayed in use by another process for\n" +
			"--lock-timeout (try again later); 130/143 interrupted by SIGINT/SIGTERM (the batches\n" +
			"committed before stay, the rest is read again next time).",
		Flags:  flags,
		Action: action(e, newWebhookLoadOptions, runF),
	})
}

// webhookLoadOptions are batstat webhook load's flags and arguments, checked.
type webhookLoadOptions struct {
	db        dbOptions
	log       logOptions
	paths     []string
	fromStart bool
}

func newWebhookLoadOptions(c *cli.Context, _ *env) (*webhookLoadOptions, error) {
	if c.NArg() == 0 {
		return nil, usagef("webhook load: no spool DIR or FILE given")
	}
	if err := flagsAfterArgs(c, "webhook load", "DIR or FILE"); err != nil {
		return nil, err
	}
	o := &webhookLoadOptions{paths: c.Args().Slice(), fromStart: c.Bool("from-start")}
	var err error
	if o.db, err = newDBOptions(c); err != nil {
		return nil, err
	}
	if o.log, err = newLogOptions(c); err != nil {
		return nil, err
	}
	return o, nil
}

// runWebhookLoad opens the database as a writer and loads the spool into it.
func runWebhookLoad(ctx context.Context, o *webhookLoadOptions, e *env) error {
	log := o.log.logger(e.stderr)
	// A missing spool is bad input, found before waiting for the database.
	if _, err := webhook.SpoolFiles(o.paths...); err != nil {
		return fmt.Errorf("webhook load: %w", err)
	}
	db, err := o.db.openWriter(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	sum, err := ingest.LoadSpool(ctx, db, o.paths, ingest.SpoolOptions{Logger: log, FromStart: o.fromStart})
	if sum != nil {
		sum.Log(log, "webhook load finished", false)
		if err == nil && len(sum.FileErrors) > 0 {
			err = fmt.Errorf("webhook load: %d spool files could not be read (the others are loaded): %w",
				len(sum.FileErrors), sum.FileErrors[0])
		}
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database %s: %w", db.Path, cerr)
	}
	if err != nil && ctx.Err() == nil {
		err = o.db.memoryHint(err)
	}
	return err
}
