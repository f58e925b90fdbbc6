package main

import (
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

func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Usage: "table, csv, json or markdown", Value: "table"},
		&cli.StringFlag{Name: "output", Usage: "write to `FILE` instead of stdout"},
	}
}

func reportCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringSliceFlag{Name: "campaign", Usage: "only this campaign (repeatable)"},
		&cli.StringFlag{Name: "since", Usage: "only messages sent (or first loaded) at or after `TIME` (RFC 3339 or YYYY-MM-DD)"},
		&cli.StringFlag{Name: "until", Usage: "only messages sent (or first loaded) before `TIME`"},
		&cli.BoolFlag{Name: "list", Usage: "list the reports with a one-line description"},
		&cli.StringFlag{Name: "queries-dir", Usage: "add the .sql files of `DIR` as reports named after their files"},
	}
	flags = append(flags, outputFlags()...)
	flags = append(flags, resourceFlags("")...)
	return withUsageErrors(&cli.Command{
		Name:      "report",
		Usage:     "run named reports (default: " + strings.Join(report.DefaultNames(), " ") + ")",
		ArgsUsage: "[NAME...]",
		Flags:     flags,
		Action:    func(c *cli.Context) error { return runReport(c, e) },
	})
}

func runReport(c *cli.Context, e *env) error {
	defs, err := report.Defs(c.String("queries-dir"))
	if err != nil {
		return err
	}
	if c.Bool("list") {
		w, closeOut, err := output(c, e)
		if err != nil {
			return err
		}
		for _, d := range defs {
			fmt.Fprintf(w, "%-12s %s\n", d.Name, d.Description)
		}
		return closeOut()
	}
	filter := report.Filter{Campaigns: c.StringSlice("campaign")}
	if filter.Since, err = parseTime("since", c.String("since")); err != nil {
		return err
	}
	if filter.Until, err = parseTime("until", c.String("until")); err != nil {
		return err
	}
	names := c.Args().Slice()
	if len(names) == 0 {
		names = report.DefaultNames()
	}
	selected, err := report.Select(defs, names...)
	if err != nil {
		return &usageError{err}
	}
	return readAndRender(c, e, func(db *store.DB) ([]*report.Result, error) {
		var results []*report.Result
		for _, d := range selected {
			res, err := report.Run(c.Context, db.DB, d, filter)
			if err != nil {
				return nil, err
			}
			results = append(results, res)
		}
		return results, nil
	})
}

func queryCommand(e *env) *cli.Command {
	flags := append([]cli.Flag{dbFlag()}, outputFlags()...)
	flags = append(flags, resourceFlags("")...)
	return withUsageErrors(&cli.Command{
		Name:      "query",
		Usage:     "run ad-hoc SQL on a read-only connection",
		ArgsUsage: "SQL (or - to read it from stdin)",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("query: want exactly one SQL argument (quote it), or - for stdin")
			}
			q := c.Args().First()
			if q == "-" {
				b, err := io.ReadAll(e.stdin)
				if err != nil {
					return fmt.Errorf("query: read stdin: %w", err)
				}
				q = string(b)
			}
			if strings.TrimSpace(q) == "" {
				return usagef("query: empty SQL")
			}
			return runQuery(c, e, q)
		},
	})
}

// runQuery streams the result of q to --output or stdout. The output is opened only once
// the query has run (duckdb-go runs it to the end before the first row), so that a
// refused or failing query leaves no output file behind.
func runQuery(c *cli.Context, e *env, q string) error {
	format, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return &usageError{err}
	}
	db, err := openDB(c, true)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := report.QueryRows(c.Context, db.DB, q)
	if refused := (*report.RefusedError)(nil); errors.As(err, &refused) {
		return &usageError{err}
	}
	if err != nil {
		return memoryHint(c, err)
	}
	defer rows.Close()
	w, closeOut, err := output(c, e)
	if err != nil {
		return err
	}
	n, err := rows.Render(w, report.RenderOptions{Format: format})
	if err != nil {
		closeOut()
		return memoryHint(c, err)
	}
	if err := closeOut(); err != nil {
		return err
	}
	if n.Shown < n.Rows {
		fmt.Fprintf(e.stderr, "batstat: query: the table shows the first %d of %d rows; --format csv, json or markdown writes them all\n", n.Shown, n.Rows)
	}
	return nil
}

func exportCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringFlag{Name: "format", Usage: "csv, parquet or json (newline-delimited) (default: from --output's extension, else csv)"},
		&cli.StringFlag{Name: "output", Usage: "`PATH` to write (a directory with --partition-by; default: stdout)"},
		&cli.StringFlag{Name: "query", Usage: "export the result of `SQL` instead of a table"},
		&cli.StringFlag{Name: "partition-by", Usage: "write Hive-style folders COLUMN=value/ (Spark, Trino, BigQuery)"},
	}
	flags = append(flags, resourceFlags("")...)
	return withUsageErrors(&cli.Command{
		Name:      "export",
		Usage:     "export a table, a view or a query to csv, parquet or json",
		ArgsUsage: "[TABLE] (default message_status)",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("export: at most one TABLE")
			}
			opts := report.ExportOptions{
				Table:       c.Args().First(),
				Query:       c.String("query"),
				Format:      c.String("format"),
				Output:      c.String("output"),
				PartitionBy: c.String("partition-by"),
			}
			if opts.Table != "" && opts.Query != "" {
				return usagef("export: give a TABLE or --query, not both")
			}
			if opts.Table == "" && opts.Query == "" {
				opts.Table = "message_status"
			}
			if opts.Output == "" || opts.Output == "-" {
				opts.Output, opts.Stdout = "-", e.stdout
			}
			db, err := openDB(c, true)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := report.Export(c.Context, db.DB, opts)
			if err != nil {
				return err
			}
			to := opts.Output
			if to == "-" {
				to = "stdout"
			}
			fmt.Fprintf(e.stderr, "exported %d rows to %s\n", n, to)
			return nil
		},
	})
}

// output returns where data goes: --output FILE or stdout. closeOut reports a failed write.
func output(c *cli.Context, e *env) (io.Writer, func() error, error) {
	path := c.String("output")
	if path == "" || path == "-" {
		return e.stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("output: %w", err)
	}
	return f, func() error {
		if err := f.Close(); err != nil {
			return fmt.Errorf("output %s: %w", path, err)
		}
		return nil
	}, nil
}

// readAndRender checks --format, opens --db read-only, lets produce compute the results
// and renders them to --output or stdout.
func readAndRender(c *cli.Context, e *env, produce func(db *store.DB) ([]*report.Result, error)) error {
	format, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return &usageError{err}
	}
	db, err := openDB(c, true)
	if err != nil {
		return err
	}
	defer db.Close()
	results, err := produce(db)
	if err != nil {
		return err
	}
	w, closeOut, err := output(c, e)
	if err != nil {
		return err
	}
	if err := report.Render(w, format, results); err != nil {
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
