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

// Exit statuses (the CLI contract in DESIGN.md).
const (
	exitOK      = 0
	exitFatal   = 1
	exitUsage   = 2
	exitPartial = 3
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
	app := newApp(e)
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
	case errors.As(err, &se):
		return 128 + int(se.sig)
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &pe):
		return exitPartial
	}
	return exitFatal
}

func newApp(e *env) *cli.App {
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
		Commands: []*cli.Command{
			fetchCommand(e),
			reportCommand(e),
			queryCommand(e),
			exportCommand(e),
			demoCommand(e),
			mockServerCommand(e),
		},
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

func newLogger(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", c.String("log-format"))
}

// openDB opens the --db file; a read-only open requires the file to exist.
func openDB(c *cli.Context, readOnly bool) (*store.DB, error) {
	path := c.String("db")
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("database %s: no such file (run batstat fetch or batstat demo first, or pass --db)", path)
		}
	}
	db, err := store.Open(c.Context, path, store.Options{
		ReadOnly:    readOnly,
		Threads:     c.Int("threads"),
		MemoryLimit: c.String("memory-limit"),
	})
	if err != nil && c.Context.Err() != nil {
		// A signal while opening: its cause decides the exit status.
		return nil, fmt.Errorf("open database %s: %w", path, context.Cause(c.Context))
	}
	return db, err
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

// memoryHint names the flag to raise when DuckDB ran out of memory.
func memoryHint(c *cli.Context, err error) error {
	if store.IsOutOfMemory(err) {
		return fmt.Errorf("%w\n(DuckDB ran out of the %s it may use: raise --memory-limit)", err, c.String("memory-limit"))
	}
	return err
}
