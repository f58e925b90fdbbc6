package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/internal/outfile"
	"github.com/batstat/batstat/report"
)

// readerFlags are the flags of the commands that read the database: DuckDB's resources and
// how long to wait for it.
func readerFlags() []cli.Flag {
	return append(resourceFlags(""), lockTimeoutFlag(readerLockTimeout, "(a fetch) and has no snapshot"))
}

// readerHelp is the --help text of report, query and export on how they read while a fetch
// runs.
const readerHelp = "While another process (a fetch) holds the database, reads its newest snapshot\n" +
	"(PATH.snapshot) and says so on stderr: reading snapshot of HH:MM:SS, run N in progress:\n" +
	"asked X of Y. With no snapshot, waits up to --lock-timeout.\n\n"

func outputFlags(formats string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Usage: formats, Value: "table"},
		&cli.StringFlag{Name: "output", Usage: "write to `FILE` instead of stdout (replaced only once complete)"},
	}
}

// formatHTML is report's page format: a whole HTML file, not one of the row formats that
// query shares.
const formatHTML = "html"

// readExitHelp is the exit statuses of the commands that read the database.
const readExitHelp = "Exit status: 0 ok; 1 fatal error (database unreadable, a query failed, an output that\n" +
	"cannot be written: an old output file is then left as it was); 2 bad usage (including an\n" +
	"output that is the database, its .wal or its .snapshot); 75 the database stayed in use by\n" +
	"another process for --lock-timeout and had no snapshot (try again later); 130/143\n" +
	"interrupted by SIGINT/SIGTERM."

func reportCommand(e *env, runF runFunc[*reportOptions]) *cli.Command {
	if runF == nil {
		runF = runReport
	}
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringSliceFlag{Name: "campaign", Usage: "only this campaign (repeatable)"},
		&cli.StringFlag{Name: "since", Usage: "only messages sent (or first loaded) at or after `TIME` (RFC 3339 or YYYY-MM-DD)"},
		&cli.StringFlag{Name: "until", Usage: "only messages sent (or first loaded) before `TIME`"},
		&cli.DurationFlag{Name: "give-up-after", Usage: "stuck, settlement: count a message without a final status as given up this long after it was sent (as fetch's schedule)", Value: ingest.DefaultGiveUpAfter},
		&cli.BoolFlag{Name: "list", Usage: "list the reports with a one-line description"},
		&cli.StringFlag{Name: "queries-dir", Usage: "add the .sql files of `DIR` as reports named after their files"},
		&cli.Float64Flag{Name: "fail-under", Usage: "after printing, exit 6 when a selected campaign's delivery rate is below `RATE` (0-1)"},
		metricsFlag(),
	}
	flags = append(flags, outputFlags("table, csv, json, markdown, or html (a page with charts; needs --output)")...)
	flags = append(flags, &cli.StringFlag{Name: "output-dir", Usage: "write one file per report to `DIR` (NAME.csv, .json, .md or .txt), created if need be"})
	flags = append(flags, readerFlags()...)
	return withUsageErrors(&cli.Command{
		Name:      "report",
		Usage:     "run named reports (default: " + strings.Join(report.DefaultNames(), " ") + ")",
		ArgsUsage: "[NAME...]",
		Description: "csv holds one table: with several reports give --output-dir DIR, one file per report.\n\n" +
			readerHelp + readExitHelp + " 6 --fail-under: a delivery rate below the gate.",
		Flags:  flags,
		Action: action(e, newReportOptions, runF),
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
	// html writes the page (report.Page) instead of the rows in out.format.
	html bool
	// failUnder is the --fail-under gate; nil = none.
	failUnder *float64
}

// newReportOptions reads the reports (--queries-dir included) and checks the names asked
// for, the filter and the format.
func newReportOptions(c *cli.Context, e *env) (*reportOptions, error) {
	var err error
	if e.metrics, err = newRunMetrics(c); err != nil {
		return nil, err
	}
	o := &reportOptions{list: c.Bool("list")}
	if o.db, err = newDBOptions(c); err != nil {
		return nil, err
	}
	if o.defs, err = report.Defs(c.String("queries-dir")); err != nil {
		return nil, err
	}
	if o.list {
		o.out = outputOptions{path: c.String("output")}
		return o, o.out.check(o.db)
	}
	o.filter.Campaigns = c.StringSlice("campaign")
	if o.filter.Since, err = parseTime("since", c.String("since")); err != nil {
		return nil, err
	}
	if o.filter.Until, err = parseTime("until", c.String("until")); err != nil {
		return nil, err
	}
	if err := flagsAfterArgs(c, "report", "report name"); err != nil {
		return nil, err
	}
	if o.filter.GiveUpAfter = c.Duration("give-up-after"); o.filter.GiveUpAfter <= 0 {
		return nil, usagef("--give-up-after %v: must be positive", o.filter.GiveUpAfter)
	}
	names := c.Args().Slice()
	if len(names) == 0 {
		names = report.DefaultNames()
	}
	if o.selected, err = report.Select(o.defs, names...); err != nil {
		return nil, &usageError{err}
	}
	if c.IsSet("fail-under") {
		r := c.Float64("fail-under")
		if !(r >= 0 && r <= 1) {
			return nil, usagef("--fail-under %v: want a delivery rate from 0 to 1", c.String("fail-under"))
		}
		o.failUnder = &r
	}
	if c.String("format") == formatHTML {
		o.out = outputOptions{path: c.String("output")}
		// A page on a terminal is noise; stdout stays possible, asked for by name.
		if o.out.path == "" || c.String("output-dir") != "" {
			return nil, usagef("--format html writes one page: give --output FILE (or --output - for stdout)")
		}
		o.html = true
		return o, o.out.check(o.db)
	}
	if o.out, err = newOutputOptions(c, o.db); err != nil {
		return nil, err
	}
	if err := o.out.checkResults(o.db, names); err != nil {
		return nil, err
	}
	return o, nil
}

func runReport(ctx context.Context, o *reportOptions, e *env) error {
	if o.list {
		out, err := o.out.create(e)
		if err != nil {
			return err
		}
		defer out.Abort()
		for _, d := range o.defs {
			fmt.Fprintf(out, "%-12s %s\n", d.Name, d.Description)
		}
		return out.Commit()
	}
	db, err := o.db.openReader(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	var results []*report.Result
	for _, d := range o.selected {
		res, err := report.Run(ctx, db.DB, d, o.filter)
		if err != nil {
			return o.db.memoryHint(err)
		}
		results = append(results, res)
	}
	// The gate and the metrics read the builtin delivery report over the same selection,
	// whether or not it is among the reports printed (or replaced by --queries-dir).
	var delivery *report.Result
	if o.failUnder != nil || e.metrics != nil {
		if delivery, err = builtinDelivery(ctx, db, o.filter); err != nil {
			return o.db.memoryHint(err)
		}
		if e.metrics != nil {
			e.metrics.delivery = delivery
		}
	}
	var page *report.Page
	if o.html {
		page, err = report.NewPage(ctx, db.DB, report.PageOptions{Database: o.db.path, Filter: o.filter, Tables: results})
		if err != nil {
			return o.db.memoryHint(err)
		}
	}
	// The output is opened once everything has been read, so that a failing report leaves
	// no file behind.
	if page != nil {
		out, err := o.out.create(e)
		if err != nil {
			return err
		}
		defer out.Abort()
		if err := page.Render(out); err != nil {
			return err
		}
		err = out.Commit()
	} else {
		err = o.out.writeResults(e, results)
	}
	if err != nil {
		return err
	}
	if o.failUnder == nil {
		return nil
	}
	return checkDeliveryRate(delivery, *o.failUnder, o.filter.Campaigns, e)
}

// checkDeliveryRate is the --fail-under gate: a *belowRateError naming every campaign of
// the delivery report whose rate is below gate. A campaign named with --campaign that has
// no message in the selection has no rate: it is named on stderr, and does not fail.
func checkDeliveryRate(delivery *report.Result, gate float64, named []string, e *env) error {
	col := func(name string) int { return slices.Index(delivery.Columns, name) }
	below := &belowRateError{gate: gate}
	seen := map[string]bool{}
	for _, row := range delivery.Rows {
		campaign, _ := row[col("campaign")].(string)
		seen[campaign] = true
		rate, _ := row[col("delivery_rate")].(float64)
		if rate >= gate {
			continue
		}
		delivered, _ := row[col("delivered")].(int64)
		messages, _ := row[col("messages")].(int64)
		below.campaigns = append(below.campaigns, campaignRate{campaign: campaign, delivered: delivered, messages: messages, rate: rate})
	}
	for _, c := range named {
		if !seen[c] {
			fmt.Fprintf(e.stderr, "batstat: --fail-under: campaign %q has no messages in the selection; it is not gated\n", c)
		}
	}
	if len(delivery.Rows) == 0 {
		fmt.Fprintf(e.stderr, "batstat: --fail-under: no campaign in the selection; nothing to gate\n")
	}
	if len(below.campaigns) > 0 {
		return below
	}
	return nil
}

func queryCommand(e *env, runF runFunc[*queryOptions]) *cli.Command {
	if runF == nil {
		runF = runQuery
	}
	flags := append([]cli.Flag{dbFlag()}, outputFlags("table, csv, json or markdown")...)
	flags = append(flags, readerFlags()...)
	return withUsageErrors(&cli.Command{
		Name:        "query",
		Usage:       "run ad-hoc SQL on a read-only connection",
		ArgsUsage:   "SQL (or - to read it from stdin)",
		Description: readerHelp + readExitHelp + " A statement that is not a query is bad usage (2).",
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
	if err := flagsAfterArgs(c, "query", "SQL"); err != nil {
		return nil, err
	}
	if c.NArg() != 1 {
		return nil, usagef("query: want exactly one SQL argument (quote it), or - for stdin")
	}
	o := &queryOptions{sql: c.Args().First()}
	var err error
	if o.db, err = newDBOptions(c); err != nil {
		return nil, err
	}
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
	if o.out, err = newOutputOptions(c, o.db); err != nil {
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
	// Under --memory-limit the result is spilled, so that the limit holds for it too.
	// Without it DuckDB may take 80% of RAM, which a spilled result would fill before it
	// spilled anything: the copy would only cost time.
	rows, err := report.QueryRows(ctx, db.DB, o.sql, report.QueryOptions{Spill: o.db.memoryLimit != ""})
	if refused := (*report.RefusedError)(nil); errors.As(err, &refused) {
		return &usageError{err}
	}
	if err != nil {
		return o.db.memoryHint(err)
	}
	defer rows.Close()
	out, err := o.out.create(e)
	if err != nil {
		return err
	}
	defer out.Abort()
	n, err := rows.Render(out, report.RenderOptions{Format: o.out.format})
	if err != nil {
		return o.db.memoryHint(err)
	}
	if err := out.Commit(); err != nil {
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
		&cli.StringFlag{Name: "format", Usage: "csv, parquet or json (newline-delimited) (default: from --output's extension; else parquet with --partition-by, csv without)"},
		&cli.StringFlag{Name: "output", Usage: "`PATH` to write, replaced only once complete (a new or empty directory with --partition-by; default: stdout)"},
		&cli.StringFlag{Name: "query", Usage: "export the result of `SQL` instead of a table"},
		&cli.StringFlag{Name: "partition-by", Usage: "write Hive-style folders COLUMN=value/ of Parquet files (Spark, Trino, BigQuery)"},
	}
	flags = append(flags, readerFlags()...)
	return withUsageErrors(&cli.Command{
		Name:      "export",
		Usage:     "export a table, a view or a query to csv, parquet or json",
		ArgsUsage: "[TABLE] (default message_status)",
		Description: "The format follows --output's extension: " + report.ExportExtensions + ";\n" +
			"any other extension needs --format.\n\n" + readerHelp + readExitHelp,
		Flags:  flags,
		Action: action(e, newExportOptions, runF),
	})
}

// exportOptions are batstat export's flags and argument, checked.
type exportOptions struct {
	db     dbOptions
	export report.ExportOptions // Stdout is the env's
}

func newExportOptions(c *cli.Context, e *env) (*exportOptions, error) {
	if err := flagsAfterArgs(c, "export", "TABLE"); err != nil {
		return nil, err
	}
	if c.NArg() > 1 {
		return nil, usagef("export: at most one TABLE")
	}
	db, err := newDBOptions(c)
	if err != nil {
		return nil, err
	}
	o := &exportOptions{db: db, export: report.ExportOptions{
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
	if out := o.export.Output; out != "" && out != "-" {
		g := outfile.Database(o.db.path)
		check := g.Check
		if o.export.PartitionBy != "" {
			check = g.CheckDir
		}
		if err := check(out); err != nil {
			return nil, outputUsage("--output", err)
		}
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

// outputOptions are --format and --output of report and query, and report's --output-dir.
type outputOptions struct {
	format report.Format
	path   string // "" or "-" = stdout
	dir    string // one file per report; "" = path
}

func newOutputOptions(c *cli.Context, db dbOptions) (outputOptions, error) {
	o := outputOptions{path: c.String("output"), dir: c.String("output-dir")}
	var err error
	if o.format, err = parseFormat(c); err != nil {
		return o, err
	}
	if o.dir != "" && o.path != "" {
		return o, usagef("give --output FILE or --output-dir DIR, not both")
	}
	return o, o.check(db)
}

func parseFormat(c *cli.Context) (report.Format, error) {
	f, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return "", usagef("--format: %v", err)
	}
	return f, nil
}

// check refuses an --output that is the database or a file beside it.
func (o outputOptions) check(db dbOptions) error {
	if o.path == "" || o.path == "-" {
		return nil
	}
	if err := outfile.Database(db.path).Check(o.path); err != nil {
		return outputUsage("--output", err)
	}
	return nil
}

// outputUsage makes an output refused by package outfile bad usage, naming the flag.
func outputUsage(flag string, err error) error {
	var ce *outfile.ClashError
	var ne *outfile.NotEmptyError
	if errors.As(err, &ce) || errors.As(err, &ne) {
		return usagef("%s: %v", flag, err)
	}
	return err
}

// checkResults checks the outputs of the reports named: csv holds one table, so several
// reports need --output-dir; there, each report's file must be new or not the database's.
func (o outputOptions) checkResults(db dbOptions, names []string) error {
	if o.dir == "" {
		if o.format == report.FormatCSV && len(names) > 1 {
			return usagef("csv holds one table and %d reports were asked for (%s): give --output-dir DIR for one file per report, or name one report",
				len(names), strings.Join(names, ", "))
		}
		return nil
	}
	g := outfile.Database(db.path)
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			return usagef("--output-dir: report %s given twice", name)
		}
		seen[name] = true
		if err := g.Check(o.dirFile(name)); err != nil {
			return outputUsage("--output-dir", err)
		}
	}
	return nil
}

// dirExt is the extension of a report's file in --output-dir, by format.
var dirExt = map[report.Format]string{
	report.FormatTable: ".txt", report.FormatCSV: ".csv", report.FormatJSON: ".json", report.FormatMarkdown: ".md",
}

// dirFile is the --output-dir file of the report named name.
func (o outputOptions) dirFile(name string) string {
	return filepath.Join(o.dir, name+dirExt[o.format])
}

// output is where data goes: the --output file or stdout. Commit makes a file whole;
// Abort, deferred, throws away one that was not committed.
type output struct {
	io.Writer
	file *outfile.File // nil for stdout
}

func (o *output) Commit() error {
	if o.file == nil {
		return nil
	}
	return o.file.Commit()
}

func (o *output) Abort() {
	if o.file != nil {
		o.file.Abort()
	}
}

// create opens the output: a file written under a temporary name and renamed over
// --output by Commit, so that a failed write leaves the old file as it was.
func (o outputOptions) create(e *env) (*output, error) {
	if o.path == "" || o.path == "-" {
		return &output{Writer: e.stdout}, nil
	}
	f, err := outfile.Create(o.path)
	if err != nil {
		return nil, err
	}
	return &output{Writer: f, file: f}, nil
}

// writeResults renders results to --output or stdout, or with --output-dir each to its own
// file. Every file is written whole before any replaces an older one.
func (o outputOptions) writeResults(e *env, results []*report.Result) error {
	if o.dir == "" {
		out, err := o.create(e)
		if err != nil {
			return err
		}
		defer out.Abort()
		if err := report.Render(out, o.format, results); err != nil {
			return err
		}
		return out.Commit()
	}
	if err := os.MkdirAll(o.dir, 0o777); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	files := make([]*outfile.File, 0, len(results))
	defer func() {
		for _, f := range files {
			f.Abort()
		}
	}()
	for _, r := range results {
		f, err := outfile.Create(o.dirFile(r.Name))
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := report.Render(f, o.format, []*report.Result{r}); err != nil {
			return fmt.Errorf("output %s: %w", o.dirFile(r.Name), err)
		}
	}
	for _, f := range files {
		if err := f.Commit(); err != nil {
			return err
		}
	}
	return nil
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
