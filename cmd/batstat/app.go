package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/store"
)

// Exit statuses: the CLI's contract with scripts and cron jobs (README.md lists them).
// Some belong to commands still to come; they are named here so that every status has one
// definition.
const (
	exitOK          = 0   // done: for fetch, every message has an answer
	exitFatal       = 1   // credentials rejected, API unreachable, database or input unreadable
	exitUsage       = 2   // bad usage, including a credential that cannot be sent
	exitPartial     = 3   // fetch finished, but some messages still failed after their retries
	exitUndelivered = 4   // status: a message ended undeliverable, permanenterror or not_found
	exitPending     = 5   // status: a message has no terminal status yet
	exitBelowRate   = 6   // report --fail-under: a campaign's delivery rate is below the gate
	exitTempFail    = 75  // the database stayed locked by another process (sysexits' EX_TEMPFAIL)
	exitInterrupted = 130 // SIGINT, after a clean stop
	exitTerminated  = 143 // SIGTERM, after a clean stop
)

// usageError is bad usage: an unknown flag or command, a missing argument, an invalid value.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// signalError is the cancellation cause of an interrupted run.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string {
	switch e.sig {
	case syscall.SIGINT:
		return "interrupted (SIGINT)"
	case syscall.SIGTERM:
		return "interrupted (SIGTERM)"
	}
	return "interrupted (" + e.sig.String() + ")"
}

// partialError is a fetch run that finished with some messages still unanswered.
type partialError struct{ failed int64 }

func (e *partialError) Error() string {
	return fmt.Sprintf("%d messages still have no answer after their retries (see the fetch_errors table); the next run asks again", e.failed)
}

// belowRateError is report --fail-under: some campaigns' delivery rates are below the gate.
type belowRateError struct {
	gate      float64
	campaigns []campaignRate
}

type campaignRate struct {
	campaign            string
	delivered, messages int64
	rate                float64
}

func (e *belowRateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "delivery rate below --fail-under %g for %d campaign(s):", e.gate, len(e.campaigns))
	for i, c := range e.campaigns {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s %.4f (%d of %d delivered)", sep, strconv.Quote(c.campaign), c.rate, c.delivered, c.messages)
	}
	return b.String()
}

// env is what commands may touch of the outside world; nothing below run uses os.Std*.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool
	// metrics is set by a command given --metrics-file; run writes it with the exit status.
	metrics *runMetrics
	// jsonLog says the command was asked for JSON logs: run writes its final error line
	// as JSON too, so that every line on stderr is.
	jsonLog bool
}

// run is the whole program: it parses args, runs a command and turns its error into an
// exit status, in this one place.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	start := time.Now()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if f, ok := stderr.(*os.File); ok {
		e.stderrTTY = isatty.IsTerminal(f.Fd())
	}
	app := newApp(e, commands(e)...)
	err := app.RunContext(ctx, args)
	code := exitCode(err)
	fail := func(err error, code int) {
		if e.jsonLog {
			logOptions{json: true}.logger(stderr).Error("batstat: "+err.Error(), "exit_status", code)
			return
		}
		fmt.Fprintf(stderr, "batstat: %v\n", err)
	}
	if err != nil {
		fail(err, code)
	}
	if e.metrics != nil {
		if err := e.metrics.write(code, time.Since(start), time.Now()); err != nil {
			if code == exitOK {
				code = exitFatal
			}
			fail(err, code)
		}
	}
	return code
}

func exitCode(err error) int {
	var ue *usageError
	var se *signalError
	var pe *partialError
	var be *belowRateError
	var ce cli.ExitCoder
	var und *undeliveredError
	var pend *pendingError
	var le *store.LockedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se) && se.sig == syscall.SIGTERM:
		return exitTerminated
	case errors.As(err, &se):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &pe):
		return exitPartial
	case errors.As(err, &be):
		return exitBelowRate
	case errors.As(err, &ce):
		// Only urfave/cli's own help command returns one: `batstat help nosuch`.
		return exitUsage
	case errors.As(err, &und):
		return exitUndelivered
	case errors.As(err, &pend):
		return exitPending
	case errors.As(err, &le):
		return exitTempFail
	}
	return exitFatal
}

// commands are batstat's commands. Each is built the same way: an options struct; a
// function that turns the flags and arguments into options, checking every value once
// (bad usage is a *usageError); and a run function that does the work with the options
// and env alone. The command's Action calls the run function it is given, so a test can
// capture the options instead; nil means the real one.
func commands(e *env) []*cli.Command {
	return []*cli.Command{
		fetchCommand(e, nil),
		statusCommand(e, nil),
		reportCommand(e, nil),
		queryCommand(e, nil),
		exportCommand(e, nil),
		demoCommand(e, nil),
		mockServerCommand(e, nil),
		webhookCommand(e),
	}
}

// runFunc is a command's run function.
type runFunc[O any] func(ctx context.Context, opts O, e *env) error

// action is a command's Action: parse the options, then hand them to runF.
func action[O any](e *env, parse func(*cli.Context, *env) (O, error), runF runFunc[O]) cli.ActionFunc {
	return func(c *cli.Context) error {
		// Before anything can fail: even a usage error is logged as JSON when asked.
		e.jsonLog = c.String("log-format") == "json"
		opts, err := parse(c, e)
		if err != nil {
			return err
		}
		return runF(c.Context, opts, e)
	}
}

func newApp(e *env, cmds ...*cli.Command) *cli.App {
	return &cli.App{
		Name:  "batstat",
		Usage: "SMSBAT campaign delivery analytics: fetch statuses into DuckDB, report, export",
		Description: "Exit status: 0 ok; 1 fatal error (credentials rejected, API unreachable, database or\n" +
			"input unreadable, an output that cannot be written); 2 bad usage; 3 fetch finished but some\n" +
			"messages still failed; 4 status: a message ended undeliverable, permanenterror or not_found;\n" +
			"5 status: a message is not terminal yet; 6 report --fail-under: a delivery rate below the\n" +
			"gate; 75 the database was busy (try again later); 130/143 interrupted by SIGINT/SIGTERM.\n" +
			"Each command's --help lists its own.",
		Writer:    e.stdout,
		ErrWriter: e.stderr,
		Reader:    e.stdin,
		Suggest:   true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Usage: "print the versions of batstat and DuckDB"},
		},
		// Errors become exit statuses in run, not inside urfave/cli (which would os.Exit).
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err}
		},
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				return printVersion(c.Context, e.stdout)
			}
			if c.NArg() > 0 {
				return usagef("unknown command %q (see batstat --help)", c.Args().First())
			}
			cli.ShowAppHelp(c)
			return usagef("no command given")
		},
		Commands: cmds,
	}
}

// withUsageErrors makes flag errors of a command exit 2.
func withUsageErrors(c *cli.Command) *cli.Command {
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return &usageError{err} }
	return c
}

// dbFlag is --db, taken by every command that touches the database.
func dbFlag() cli.Flag {
	return &cli.StringFlag{Name: "db", Usage: "DuckDB database `PATH`", EnvVars: []string{"BATSTAT_DB"}, Value: "batstat.duckdb"}
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Usage: "log format on stderr: text or json", Value: "text"},
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info"},
	}
}

// logOptions are --log-format and --log-level.
type logOptions struct {
	level slog.Level
	json  bool
}

func newLogOptions(c *cli.Context) (logOptions, error) {
	var o logOptions
	if err := o.level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return o, usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	switch c.String("log-format") {
	case "text":
	case "json":
		o.json = true
	default:
		return o, usagef("--log-format %q: want text or json", c.String("log-format"))
	}
	return o, nil
}

func (o logOptions) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: o.level}
	if o.json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// dbOptions are --db, --lock-timeout and DuckDB's resources.
type dbOptions struct {
	path        string
	threads     int
	memoryLimit string
	// lockTimeout is how long to wait for the file while another process holds it.
	lockTimeout time.Duration
}

func newDBOptions(c *cli.Context) (dbOptions, error) {
	o := dbOptions{path: c.String("db"), threads: c.Int("threads"), memoryLimit: strings.TrimSpace(c.String("memory-limit")),
		lockTimeout: c.Duration("lock-timeout")}
	if o.threads < 0 {
		return o, usagef("--threads %d: must be 0 (one per core) or more", o.threads)
	}
	if err := store.CheckMemoryLimit(o.memoryLimit); err != nil {
		return o, usagef("--memory-limit %q: %v", c.String("memory-limit"), err)
	}
	return o, nil
}

// Default --lock-timeout: a reader gives up soon, an analyst is waiting; a writer (a cron
// job) waits longer for an analyst's query to end.
const (
	readerLockTimeout = 30 * time.Second
	writerLockTimeout = 5 * time.Minute
)

// lockTimeoutFlag is --lock-timeout, with the command's default.
func lockTimeoutFlag(def time.Duration, what string) cli.Flag {
	return &cli.DurationFlag{Name: "lock-timeout", Value: def,
		Usage: "wait up to `D` while another process holds the database " + what + ", then exit 75",
		Action: func(_ *cli.Context, d time.Duration) error {
			if d < 0 {
				return usagef("--lock-timeout %s: must not be negative", d)
			}
			return nil
		}}
}

func (o dbOptions) storeOptions(readOnly bool) store.Options {
	return store.Options{ReadOnly: readOnly, Threads: o.threads, MemoryLimit: o.memoryLimit}
}

// openWriter opens the database read-write for a command that writes to it (fetch, and
// any other writer): while another process holds the file it waits up to --lock-timeout,
// saying so in the log, and then fails with the *store.LockedError that exits 75.
func (o dbOptions) openWriter(ctx context.Context, log *slog.Logger) (*store.DB, error) {
	var db *store.DB
	err := o.wait(func(held *store.LockedError) {
		log.Info(fmt.Sprintf("database %s is in use by %s; waiting up to %s", o.path, holder(held), store.FormatWait(o.lockTimeout)))
	}).Do(ctx, func() error {
		var err error
		db, err = store.Open(ctx, o.path, o.storeOptions(false))
		return err
	})
	return db, o.openError(ctx, err)
}

// openReader opens the database read-only for report, query and export: the database
// when it can, else its newest snapshot, saying so on stderr with how old it is and how
// far the run had got; with neither it waits up to --lock-timeout (see store.OpenReader).
func (o dbOptions) openReader(ctx context.Context, e *env) (*store.DB, error) {
	if _, err := os.Stat(o.path); err != nil {
		return nil, fmt.Errorf("database %s: no such file (run batstat fetch or batstat demo first, or pass --db)", o.path)
	}
	db, err := store.OpenReader(ctx, o.path, o.storeOptions(true), o.wait(func(held *store.LockedError) {
		fmt.Fprintf(e.stderr, "batstat: database %s is in use by %s and has no snapshot yet; waiting up to %s\n",
			o.path, holder(held), store.FormatWait(o.lockTimeout))
	}))
	if err != nil {
		return nil, o.openError(ctx, err)
	}
	if s := db.FromSnapshot; s != nil {
		fmt.Fprintln(e.stderr, snapshotNotice(s, time.Now()))
	}
	return db, nil
}

// openScratch opens a private copy of the database for a dry run (see store.OpenScratch):
// the file itself when it can, else the snapshot a running fetch published, saying so; with
// neither it waits up to --lock-timeout.
func (o dbOptions) openScratch(ctx context.Context, e *env, log *slog.Logger) (*store.DB, error) {
	db, err := store.OpenScratch(ctx, o.path, o.storeOptions(false), o.wait(func(held *store.LockedError) {
		log.Info(fmt.Sprintf("database %s is in use by %s and has no snapshot yet; waiting up to %s", o.path, holder(held), store.FormatWait(o.lockTimeout)))
	}))
	if err != nil {
		return nil, o.openError(ctx, err)
	}
	if s := db.FromSnapshot; s != nil {
		fmt.Fprintln(e.stderr, snapshotNotice(s, time.Now()))
	}
	return db, nil
}

func (o dbOptions) wait(waiting func(*store.LockedError)) store.Wait {
	return store.Wait{Timeout: o.lockTimeout, Waiting: waiting}
}

func (o dbOptions) openError(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		// A signal while opening or waiting: its cause decides the exit status.
		return fmt.Errorf("open database %s: %w", o.path, context.Cause(ctx))
	}
	return err
}

func holder(e *store.LockedError) string {
	if e.PID == "" {
		return "another process"
	}
	return "PID " + e.PID
}

// snapshotNotice is the line that tells a reader it reads a snapshot: when it was taken
// (with the date when that was not within the last day) and how far the run in it had got.
func snapshotNotice(s *store.SnapshotInfo, now time.Time) string {
	taken := s.Taken.Local()
	when := taken.Format("15:04:05")
	if now.Sub(taken) >= 24*time.Hour {
		when = taken.Format("2006-01-02 15:04:05")
	}
	line := "reading snapshot of " + when
	if r := s.Run; r != nil {
		state := "in progress"
		if r.Outcome != store.OutcomeRunning {
			state = "ended " + r.Outcome
		}
		if r.Loading {
			line += fmt.Sprintf(", run %d %s: loading its inputs", r.RunID, state)
		} else {
			line += fmt.Sprintf(", run %d %s: asked %d of %d", r.RunID, state, r.Asked, r.Requested)
		}
	}
	return line
}

// memoryHint names the flag to raise when DuckDB ran out of memory.
func (o dbOptions) memoryHint(err error) error {
	if store.IsOutOfMemory(err) {
		return fmt.Errorf("%w\n(DuckDB ran out of the %s it may use: raise --memory-limit)", err, o.memoryLimit)
	}
	return err
}

// resourceFlags are DuckDB's resources. memoryLimit is the command's default, "" meaning
// DuckDB's own (80% of RAM): reports want memory for their joins, while a fetch appends and
// is bounded by its load chunks, so it is held to a small limit on a shared host.
func resourceFlags(memoryLimit string) []cli.Flag {
	limit := &cli.StringFlag{Name: "memory-limit", Usage: "DuckDB memory limit: a `SIZE` such as 512MB, 2GB or 1.5GiB", Value: memoryLimit}
	if memoryLimit == "" {
		limit.DefaultText = "80% of RAM"
	}
	return []cli.Flag{
		&cli.IntFlag{Name: "threads", Usage: "DuckDB worker threads (0 = one per core)"},
		limit,
	}
}

// flagsAfterArgs refuses an argument that looks like a flag after the first argument:
// urfave/cli stops reading flags at the first argument that is not one, so in
// `report delivery --format csv` "--format" and "csv" would be taken as report names.
// The first argument is left alone: it follows "--" or is "-", or a flag parser error
// would have stopped the command already.
func flagsAfterArgs(c *cli.Context, cmd, what string) error {
	args := c.Args().Slice()
	for _, a := range args[min(1, len(args)):] {
		if len(a) > 1 && a[0] == '-' {
			first := args[0]
			if r := []rune(first); len(r) > 40 {
				first = string(r[:40]) + "…"
			}
			hint := ""
			if what == "FILE" {
				hint = " (a file whose name starts with - can be given as ./NAME)"
			}
			return usagef("%s: %q comes after the %s %q: flags go before the arguments (batstat reads flags "+
				"only up to the first argument that is not one); move it before %q%s", cmd, a, what, first, first, hint)
		}
	}
	return nil
}
