package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

// readerFlags are the flags of the commands that read the database: DuckDB's resources and
// how long to wait for it.
func readerFlags() []cli.Flag {
	return append(resourceFlags(""), lockTimeoutFlag(readerLockTimeout, "(a fetch) and has no snapshot"))
}

// readerHelp is the --help text of report, query and export: how they read while a fetch
// runs, and their exit statuses.
const readerHelp = "While another process (a fetch) holds the database, reads its newest snapshot\n" +
	"(PATH.snapshot) and says so on stderr: reading snapshot of HH:MM:SS, run N in progress:\n" +
	"asked X of Y. With no snapshot, waits up to --lock-timeout.\n\n" +
	"Exit status: 0 ok; 1 fatal error; 2 bad usage; 75 the database stayed in use by another\n" +
	"process for --lock-timeout and had no snapshot (try again later); 130/143 interrupted."

func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Usage: "table, csv, json or markdown", Value: "table"},
		&cli.StringFlag{Name: "output", Usage: "write to `FILE` instead of stdout"},
	}
}

func reportCommand(e *env, runF runFunc[*reportOptions]) *cli.Command {
	if runF == nil {
		runF = runReport
	}
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringSliceFlag{Name: "campaign", Usage: "only this campaign (repeatable)"},
		&cli.StringFlag{Name: "since", Usage: "only messages sent (or first loaded) at or after `TIME` (RFC 3339 or YYYY-MM-DD)"},
		&cli.StringFlag{Name: "until", Usage: "only messages sent (or first loaded) before `TIME`"},
		&cli.BoolFlag{Name: "list", Usage: "list the reports with a one-line description"},
		&cli.StringFlag{Name: "queries-dir", Usage: "add the .sql files of `DIR` as reports named after their files"},
	}
	flags = append(flags, outputFlags()...)
	flags = append(flags, readerFlags()...)
	return withUsageErrors(&cli.Command{
		Name:        "report",
		Usage:       "run named reports (default: " + strings.Join(report.DefaultNames(), " ") + ")",
		Description: readerHelp,
		ArgsUsage:   "[NAME...]",
		Flags:       flags,
		Action:      action(e, newReportOptions, runF),
	})
}

// reportOptions are batstat report's flags and arguments, checked.
type reportOptions struct {
	db  dbOptions
	out outputOptions
	// list prints defs instead of running reports; the other flags are then not used.
	list     bool
	defs     []report.Def
	selected []report.Def
	filter   report.Filter
}

// newReportOptions reads the reports (--queries-dir included) and checks the names asked
// for, the filter and the format.
func newReportOptions(c *cli.Context, _ *env) (*reportOptions, error) {
	o := &reportOptions{db: newDBOptions(c), out: outputOptions{path: c.String("output")}, list: c.Bool("list")}
	var err error
	if o.defs, err = report.Defs(c.String("queries-dir")); err != nil {
		return nil, err
	}
	if o.list {
		return o, nil
	}
	o.filter.Campaigns = c.StringSlice("campaign")
	if o.filter.Since, err = parseTime("since", c.String("since")); err != nil {
		return nil, err
	}
	if o.filter.Until, err = parseTime("until", c.String("until")); err != nil {
		return nil, err
	}
	names := c.Args().Slice()
	if len(names) == 0 {
		names = report.DefaultNames()
	}
	if o.selected, err = report.Select(o.defs, names...); err != nil {
		return nil, &usageError{err}
	}
	if o.out.format, err = parseFormat(c); err != nil {
		return nil, err
	}
	return o, nil
}

func runReport(ctx context.Context, o *reportOptions, e *env) error {
	if o.list {
		w, closeOut, err := o.out.open(e)
		if err != nil {
			return err
		}
		for _, d := range o.defs {
			fmt.Fprintf(w, "%-12s %s\n", d.Name, d.Description)
		}
		return closeOut()
	}
	return readAndRender(ctx, o.db, o.out, e, func(db *store.DB) ([]*report.Result, error) {
		var results []*report.Result
		for _, d := range o.selected {
			res, err := report.Run(ctx, db.DB, d, o.filter)
			if err != nil {
				return nil, err
			}
			results = append(results, res)
		}
		return results, nil
	})
}

func queryCommand(e *env, runF runFunc[*queryOptions]) *cli.Command {
	if runF == nil {
		runF = runQuery
	}
	flags := append([]cli.Flag{dbFlag()}, outputFlags()...)
	flags = append(flags, readerFlags()...)
	return withUsageErrors(&cli.Command{
		Name:        "query",
		Usage:       "run ad-hoc SQL on a read-only connection",
		Description: readerHelp,
		ArgsUsage:   "SQL (or - to read it from stdin)",
		Flags:       flags,
		Action:      action(e, newQueryOptions, runF),
	})
}

// queryOptions are batstat query's flags and argument, checked.
type queryOptions struct {
	db  dbOptions
	out outputOptions
	sql string
}

// newQueryOptions takes the SQL from the argument, or from stdin for "-".
func newQueryOptions(c *cli.Context, e *env) (*queryOptions, error) {
	if c.NArg() != 1 {
		return nil, usagef("query: want exactly one SQL argument (quote it), or - for stdin")
	}
	o := &queryOptions{db: newDBOptions(c), out: outputOptions{path: c.String("output")}, sql: c.Args().First()}
	if o.sql == "-" {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return nil, fmt.Errorf("query: read stdin: %w", err)
		}
		o.sql = string(b)
	}
	if strings.TrimSpace(o.sql) == "" {
		return nil, usagef("query: empty SQL")
	}
	var err error
	if o.out.format, err = parseFormat(c); err != nil {
		return nil, err
	}
	return o, nil
}

// runQuery streams the result of the SQL to --output or stdout. The output is opened only
// once the query has run (duckdb-go runs it to the end before the first row), so that a
// refused or failing query leaves no output file behind.
func runQuery(ctx context.Context, o *queryOptions, e *env) error {
	db, err := o.db.openReader(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := report.QueryRows(ctx, db.DB, o.sql)
	if refused := (*report.RefusedError)(nil); errors.As(err, &refused) {
		return &usageError{err}
	}
	if err != nil {
		return o.db.memoryHint(err)
	}
	defer rows.Close()
	w, closeOut, err := o.out.open(e)
	if err != nil {
		return err
	}
	n, err := rows.Render(w, report.RenderOptions{Format: o.out.format})
	if err != nil {
		closeOut()
		return o.db.memoryHint(err)
	}
	if err := closeOut(); err != nil {
		return err
	}
	if n.Shown < n.Rows {
		fmt.Fprintf(e.stderr, "batstat: query: the table shows the first %d of %d rows; --format csv, json or markdown writes them all\n", n.Shown, n.Rows)
	}
	return nil
}

func exportCommand(e *env, runF runFunc[*exportOptions]) *cli.Command {
	if runF == nil {
		runF = runExport
	}
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringFlag{Name: "format", Usage: "csv, parquet or json (newline-delimited) (default: from --output's extension, else csv)"},
		&cli.StringFlag{Name: "output", Usage: "`PATH` to write (a directory with --partition-by; default: stdout)"},
		&cli.StringFlag{Name: "query", Usage: "export the result of `SQL` instead of a table"},
		&cli.StringFlag{Name: "partition-by", Usage: "write Hive-style folders COLUMN=value/ (Spark, Trino, BigQuery)"},
	}
	flags = append(flags, readerFlags()...)
	return withUsageErrors(&cli.Command{
		Name:        "export",
		Usage:       "export a table, a view or a query to csv, parquet or json",
		Description: readerHelp,
		ArgsUsage:   "[TABLE] (default message_status)",
		Flags:       flags,
		Action:      action(e, newExportOptions, runF),
	})
}

// exportOptions are batstat export's flags and argument, checked.
type exportOptions struct {
	db     dbOptions
	export report.ExportOptions // Stdout is the env's
}

func newExportOptions(c *cli.Context, e *env) (*exportOptions, error) {
	if c.NArg() > 1 {
		return nil, usagef("export: at most one TABLE")
	}
	o := &exportOptions{db: newDBOptions(c), export: report.ExportOptions{
		Table:       c.Args().First(),
		Query:       c.String("query"),
		Format:      c.String("format"),
		Output:      c.String("output"),
		PartitionBy: c.String("partition-by"),
		Stdout:      e.stdout,
	}}
	if err := o.export.Validate(); err != nil {
		return nil, &usageError{err}
	}
	return o, nil
}

func runExport(ctx context.Context, o *exportOptions, e *env) error {
	db, err := o.db.openReader(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := report.Export(ctx, db.DB, o.export)
	if err != nil {
		return err
	}
	to := o.export.Output
	if to == "" || to == "-" {
		to = "stdout"
	}
	fmt.Fprintf(e.stderr, "exported %d rows to %s\n", n, to)
	return nil
}

// outputOptions are --format and --output of report and query.
type outputOptions struct {
	format report.Format
	path   string // "" or "-" = stdout
}

func parseFormat(c *cli.Context) (report.Format, error) {
	f, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return "", usagef("--format: %v", err)
	}
	return f, nil
}

// open returns where data goes: the --output file or stdout. closeOut reports a failed
// write.
func (o outputOptions) open(e *env) (w io.Writer, closeOut func() error, err error) {
	if o.path == "" || o.path == "-" {
		return e.stdout, func() error { return nil }, nil
	}
	f, err := os.Create(o.path)
	if err != nil {
		return nil, nil, fmt.Errorf("output: %w", err)
	}
	return f, func() error {
		if err := f.Close(); err != nil {
			return fmt.Errorf("output %s: %w", o.path, err)
		}
		return nil
	}, nil
}

// readAndRender opens the database read-only, lets produce compute the results and
// renders them to --output or stdout.
func readAndRender(ctx context.Context, dbo dbOptions, out outputOptions, e *env, produce func(db *store.DB) ([]*report.Result, error)) error {
	db, err := dbo.openReader(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	results, err := produce(db)
	if err != nil {
		return err
	}
	w, closeOut, err := out.open(e)
	if err != nil {
		return err
	}
	if err := report.Render(w, out.format, results); err != nil {
		closeOut()
		return err
	}
	return closeOut()
}

func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", flag, s)
}
