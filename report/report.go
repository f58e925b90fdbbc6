// Package report runs batstat's named SQL reports and ad-hoc SQL against a batstat DuckDB
// database, renders the results (table, csv, json, markdown) and exports tables or queries
// to csv, json or Parquet files with DuckDB's COPY.
//
// The reports are the *.sql files of package queries, plus any *.sql file of an extra
// directory. Each file is one SELECT; its header comment names and describes it:
//
//	-- delivery: delivery status counts and delivery rate per campaign
//	-- total: messages delivered delivery_rate=delivered/messages
//
// Reports take their filters as named parameters, never as SQL text: $campaigns
// (VARCHAR[], empty = all), $since and $until (TIMESTAMPTZ, NULL = unbounded; since is
// inclusive, until exclusive), $as_of (TIMESTAMPTZ, NULL = now) and $give_up_after
// (INTERVAL, NULL = never). Run binds them all; a report uses those it needs and may not use
// any other.
//
// The usual call:
//
//	defs, err := report.Defs(extraDir)
//	sel, err := report.Select(defs, report.DefaultNames()...)
//	for _, d := range sel { res, err := report.Run(ctx, db, d, filter); ... }
//	err = report.Render(os.Stdout, report.FormatTable, results)
//
// Ad-hoc SQL, whose result may be large, is written as it is read:
//
//	rows, err := report.QueryRows(ctx, db, sql, report.QueryOptions{}) // *RefusedError: not a single query
//	defer rows.Close()
//	n, err := rows.Render(os.Stdout, report.RenderOptions{Format: report.FormatCSV})
//
// Everything here is safe for concurrent use as far as the *sql.DB given is.
package report

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/queries"
)

// Filter selects what a report counts. The zero Filter selects everything, measured now.
type Filter struct {
	// Campaigns restricts the report to these campaigns (exact names); none = all.
	Campaigns []string
	// Since and Until bound the message time (sent_at when it parses as a timestamp, else
	// first_loaded_at), a run's started_at, or an error's failed_at/rejected_at:
	// Since <= t < Until. A zero time is unbounded. A sent_at written without a UTC offset
	// is read in DuckDB's TimeZone setting, which defaults to the machine's zone.
	Since, Until time.Time
	// AsOf is the time ages are measured at (the stuck and settlement reports); zero = now.
	AsOf time.Time
	// GiveUpAfter is the age past which a message without a terminal status counts as given
	// up, as fetch's schedule stops asking it (the stuck and settlement reports); zero = none
	// is. batstat report passes its --give-up-after, whose default is fetch's.
	GiveUpAfter time.Duration
}

// Def is a named report: one SQL SELECT and what --list shows about it.
type Def struct {
	Name        string
	Description string // the one-line description from the header comment
	SQL         string
	// Source is "builtin" for the reports embedded in package queries, else the file path.
	Source string
	// Total is the "-- total:" line of the header (see Result.Total); "" = no TOTAL row.
	Total string
}

// Builtin is the Source of the reports embedded in the binary.
const Builtin = "builtin"

// builtinOrder lists the embedded reports in the order --list shows them: the default ones
// first. A builtin file missing from this list is listed after them, by name.
var builtinOrder = []string{"delivery", "cost", "fallback", "channels", "stuck", "settlement", "errors", "runs"}

// DefaultNames returns the reports `batstat report` runs when given no names.
func DefaultNames() []string { return []string{"delivery", "cost", "fallback"} }

// nameRE is what a report name may look like: it comes from a file name and is typed on the
// command line.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// Defs returns the builtin reports and, when extraDir is not "", one report per *.sql file
// of extraDir (not its subdirectories), named by the file's base name without ".sql". An
// extra file named like a builtin report replaces it (its Source says so): analysts are
// meant to copy a builtin report and adapt it. Builtins come first in their usual order,
// then the other extra reports by name.
func Defs(extraDir string) ([]Def, error) {
	var defs []Def
	entries, err := fs.ReadDir(queries.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read builtin reports: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok || e.IsDir() {
			continue
		}
		text, err := fs.ReadFile(queries.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read builtin report %s: %w", name, err)
		}
		d, err := parseDef(name, string(text), Builtin)
		if err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	slices.SortStableFunc(defs, func(a, b Def) int {
		ia, ib := builtinRank(a.Name), builtinRank(b.Name)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a.Name, b.Name)
	})
	if extraDir == "" {
		return defs, nil
	}

	entries, err = os.ReadDir(extraDir)
	if err != nil {
		return nil, fmt.Errorf("read reports directory: %w", err)
	}
	var extra []Def
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(extraDir, e.Name())
		if !nameRE.MatchString(name) {
			return nil, fmt.Errorf("report %s: name %q may only hold letters, digits, _ and -", path, name)
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read report: %w", err)
		}
		d, err := parseDef(name, string(text), path)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(defs, func(b Def) bool { return b.Name == name }); i >= 0 {
			defs[i] = d
			continue
		}
		extra = append(extra, d) // os.ReadDir sorts by file name
	}
	return append(defs, extra...), nil
}

func builtinRank(name string) int {
	if i := slices.Index(builtinOrder, name); i >= 0 {
		return i
	}
	return len(builtinOrder)
}

// parseDef reads the header comment of a report: the leading lines that start with "--".
// The description is the text of "-- NAME: text", else of the first comment line that is
// not a directive; "-- total: ..." gives Total.
func parseDef(name, text, source string) (Def, error) {
	d := Def{Name: name, SQL: text, Source: source}
	if strings.TrimSpace(stripComments(text)) == "" {
		return Def{}, fmt.Errorf("report %s (%s): no SQL", name, source)
	}
	var firstComment string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		c, ok := strings.CutPrefix(line, "--")
		if !ok {
			break
		}
		c = strings.TrimSpace(c)
		if desc, ok := strings.CutPrefix(c, name+":"); ok && d.Description == "" {
			d.Description = strings.TrimSpace(desc)
			continue
		}
		if spec, ok := strings.CutPrefix(c, "total:"); ok {
			d.Total = strings.TrimSpace(d.Total + " " + spec)
			continue
		}
		if firstComment == "" {
			firstComment = c
		}
	}
	if d.Description == "" {
		d.Description = firstComment
	}
	if _, err := parseTotal(d.Total); err != nil {
		return Def{}, fmt.Errorf("report %s (%s): %w", name, source, err)
	}
	return d, nil
}

// stripComments removes "--" line comments, to tell a file that holds only comments.
func stripComments(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// Select returns the defs named, in the order named; an unknown name is an error that
// lists the known ones.
func Select(defs []Def, names ...string) ([]Def, error) {
	out := make([]Def, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(defs, func(d Def) bool { return d.Name == n })
		if i < 0 {
			known := make([]string, len(defs))
			for j, d := range defs {
				known[j] = d.Name
			}
			return nil, fmt.Errorf("no report named %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, defs[i])
	}
	return out, nil
}

// Result is the output of a report or query: column names and DuckDB type names, and the
// rows as duckdb-go scans them (nil for NULL, duckdb.Decimal for DECIMAL, time.Time for
// times, int64/int32/*big.Int for integers, float64 for DOUBLE, ...).
type Result struct {
	Name    string
	Columns []string
	Types   []string // DuckDB type names, e.g. BIGINT, DECIMAL(38,6), TIMESTAMPTZ, JSON
	Rows    [][]any
	// Total says which columns the TOTAL row of table and markdown output fills; "" = no
	// TOTAL row. Space-separated items:
	//   col          the exact sum of an integer or DECIMAL column
	//   col@key      that sum, shown only when every row with a non-zero col has the same
	//                value in column key (money summed only within one currency)
	//   col=num/den  total of num / total of den (0 when that is 0), for rates
	// Other columns are blank in the TOTAL row; the first column says TOTAL.
	Total string
}

// paramNames are the named parameters Run binds; a report may use any of them.
var paramNames = []string{"campaigns", "since", "until", "as_of", "give_up_after"}

// Run runs a report with the filter bound as parameters. The report SQL may use any subset
// of $campaigns, $since, $until, $as_of and $give_up_after, and no other parameter: duckdb-go binds a
// parameter it cannot match by name to the argument at the same position, so an unknown
// name would silently read the wrong value; Run refuses it instead.
func Run(ctx context.Context, db *sql.DB, def Def, f Filter) (*Result, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", def.Name, canceled(ctx, err))
	}
	defer conn.Close()
	if err := checkParams(ctx, conn, def.SQL); err != nil {
		return nil, fmt.Errorf("report %s: %w", def.Name, canceled(ctx, err))
	}
	campaigns := f.Campaigns
	if campaigns == nil {
		campaigns = []string{} // a nil slice binds as an untyped NULL
	}
	rows, err := conn.QueryContext(ctx, def.SQL,
		sql.Named("campaigns", campaigns),
		sql.Named("since", nullTime(f.Since)),
		sql.Named("until", nullTime(f.Until)),
		sql.Named("as_of", nullTime(f.AsOf)),
		sql.Named("give_up_after", nullInterval(f.GiveUpAfter)),
	)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", def.Name, canceled(ctx, err))
	}
	res, err := scan(rows)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", def.Name, canceled(ctx, err))
	}
	res.Name, res.Total = def.Name, def.Total
	return res, nil
}

// nullInterval is d as a DuckDB INTERVAL, NULL for zero. An INTERVAL keeps microseconds.
func nullInterval(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return duckdb.Interval{Micros: d.Microseconds()}
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// checkParams fails unless query is a single SELECT that uses only the parameters Run binds.
func checkParams(ctx context.Context, conn *sql.Conn, query string) error {
	return prepareSelect(ctx, conn, query, func(st *duckdb.Stmt) error {
		for i := 1; i <= st.NumInput(); i++ {
			name, err := st.ParamName(i)
			if err != nil {
				return fmt.Errorf("parameter %d: %w", i, err)
			}
			if !slices.Contains(paramNames, name) {
				return fmt.Errorf("unknown parameter $%s (reports may use $%s)", name, strings.Join(paramNames, ", $"))
			}
		}
		return nil
	})
}

// prepareSelect checks that query is one statement that only reads (see RefusedError),
// prepares it on conn without running it and hands the statement to check.
//
// It asks DuckDB's parser first, which binds nothing: binding has side effects for some
// statements (EXPORT DATABASE creates its directory). It then uses the driver's
// context-free Prepare on purpose: duckdb-go's PrepareContext (and QueryContext) run every
// statement but the last while preparing, so "SELECT 1; DROP TABLE x; SELECT 2" would drop
// the table, whereas Prepare refuses more than one statement before running anything.
func prepareSelect(ctx context.Context, conn *sql.Conn, query string, check func(*duckdb.Stmt) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var errorType sql.NullString
	var statements sql.NullInt64
	err := conn.QueryRowContext(ctx, `SELECT j->>'error_type', json_array_length(j->'statements')
		FROM (SELECT json_serialize_sql($1::VARCHAR) AS j)`, query).Scan(&errorType, &statements)
	switch {
	case err != nil:
		return fmt.Errorf("parse: %w", err)
	case !errorType.Valid && statements.Int64 > 1:
		return refused(query, 0, true)
	case errorType.Valid && errorType.String != "parser":
		// Any statement but a SELECT, alone or among others.
		return refused(query, 0, false)
	}
	// One SELECT, or a syntax error that Prepare reports with its position; either way
	// nothing that binding could act on.
	return conn.Raw(func(dc any) error {
		c, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		st, err := c.Prepare(query)
		if err != nil {
			if strings.Contains(err.Error(), "multi-statement") {
				// duckdb-go's error for this is unexported; its advice
				// ("try using PrepareContext") would mislead a user.
				return refused(query, 0, true)
			}
			return err
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return fmt.Errorf("driver statement %T is not a DuckDB statement", st)
		}
		typ, err := ds.StatementType()
		if err != nil {
			return err
		}
		if typ != duckdb.STATEMENT_TYPE_SELECT {
			return refused(query, typ, false)
		}
		return check(ds)
	})
}

// scan reads all rows; it closes rows.
func scan(rows *sql.Rows) (*Result, error) {
	defer rows.Close()
	src, err := newSQLRows(rows)
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: src.names, Types: src.types, Rows: [][]any{}}
	for {
		row, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, slices.Clone(row))
	}
	return res, rows.Close()
}
