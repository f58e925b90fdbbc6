package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"

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

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

// partialError is a fetch run that finished with some messages still unanswered.
type partialError struct{ failed int64 }

func (e *partialError) Error() string {
	return fmt.Sprintf("%d messages still have no answer after their retries (see the fetch_errors table); the next run asks again", e.failed)
}

// env is what commands may touch of the outside world; nothing below run uses os.Std*.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool
}

// run is the whole program: it parses args, runs a command and turns its error into an
// exit status, in this one place.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if f, ok := stderr.(*os.File); ok {
		e.stderrTTY = isatty.IsTerminal(f.Fd())
	}
	app := newApp(e, commands(e)...)
	err := app.RunContext(ctx, args)
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "batstat: %v\n", err)
	}
	return code
}

func exitCode(err error) int {
	var ue *usageError
	var se *signalError
	var pe *partialError
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
		Description: "Exit status: 0 ok; 1 fatal error (credentials rejected, database or input unreadable);\n" +
			"2 bad usage; 3 fetch finished but some messages still failed; 130/143 interrupted.",
		Writer:          e.stdout,
		ErrWriter:       e.stderr,
		Reader:          e.stdin,
		HideHelpCommand: true,
		Suggest:         true,
		// Errors become exit statuses in run, not inside urfave/cli (which would os.Exit).
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err}
		},
		Action: func(c *cli.Context) error {
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

// dbOptions are --db and DuckDB's resources.
type dbOptions struct {
	path        string
	threads     int
	memoryLimit string
}

func newDBOptions(c *cli.Context) dbOptions {
	return dbOptions{path: c.String("db"), threads: c.Int("threads"), memoryLimit: c.String("memory-limit")}
}

// open opens the database; a read-only open requires the file to exist.
func (o dbOptions) open(ctx context.Context, readOnly bool) (*store.DB, error) {
	if readOnly {
		if _, err := os.Stat(o.path); err != nil {
			return nil, fmt.Errorf("database %s: no such file (run batstat fetch or batstat demo first, or pass --db)", o.path)
		}
	}
	db, err := store.Open(ctx, o.path, store.Options{
		ReadOnly:    readOnly,
		Threads:     o.threads,
		MemoryLimit: o.memoryLimit,
	})
	if err != nil && ctx.Err() != nil {
		// A signal while opening: its cause decides the exit status.
		return nil, fmt.Errorf("open database %s: %w", o.path, context.Cause(ctx))
	}
	return db, err
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
	usage := "DuckDB memory limit, e.g. 2GB (default 80% of RAM)"
	if memoryLimit != "" {
		usage = "DuckDB memory limit, e.g. 2GB"
	}
	return []cli.Flag{
		&cli.IntFlag{Name: "threads", Usage: "DuckDB worker threads (0 = one per core)"},
		&cli.StringFlag{Name: "memory-limit", Usage: usage, Value: memoryLimit},
	}
}
