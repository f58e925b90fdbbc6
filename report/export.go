package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/internal/outfile"
)

// DefaultExportTable is what Export writes when given neither a table nor a query.
const DefaultExportTable = "message_status"

// ExportOptions say what Export writes and where.
type ExportOptions struct {
	// Table is a table or view of the database ("name" or "schema.name"); it is checked
	// against information_schema, so it cannot smuggle SQL. Default: message_status.
	Table string
	// Query is a single SELECT to export instead of Table.
	Query string
	// Format is csv (with a header row), json (newline-delimited: one object per line, as
	// DuckDB writes it; not a JSON array) or parquet. "" = from Output's extension (see
	// ExportExtensions; an Output with another extension is refused, one without is
	// csv), and parquet with PartitionBy. A Format that contradicts a known extension of
	// Output (csv to x.parquet) is refused.
	Format string
	// Output is the file to write, or with PartitionBy the directory to create (it must be
	// new or empty). It is written under a temporary name beside it and renamed into place
	// only once complete (package outfile): a failed export leaves an old file as it was.
	// "" or "-" = Stdout.
	Output string
	// PartitionBy names a column of the result: Output becomes a directory of Hive-style
	// folders COLUMN=value/ holding one or more files each.
	PartitionBy string
	// Stdout receives the file when Output is "" or "-".
	Stdout io.Writer
}

// Export writes a table, a view or a query to a file with DuckDB's COPY ... TO and returns
// the number of rows written. Parquet keeps DuckDB's types: DECIMAL money stays DECIMAL
// and TIMESTAMPTZ becomes a UTC-adjusted TIMESTAMP (microseconds).
//
// COPY TO writes a new file, not the database, so it works on a read-only database. For
// stdout DuckDB writes to a temporary file that is then copied to Stdout: COPY to
// /dev/stdout would work on Linux for csv and json, but it bypasses the caller's writer
// (tests, --output handling) and does not exist on Windows. A file output is written to a
// temporary file beside it and renamed over it once COPY has succeeded.
func Export(ctx context.Context, db *sql.DB, opts ExportOptions) (rows int64, err error) {
	if err := opts.Validate(); err != nil {
		return 0, err
	}
	format, _ := exportFormat(opts.Format, opts.Output, opts.PartitionBy != "")
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("export: %w", canceled(ctx, err))
	}
	defer conn.Close()

	var source string // SQL of what COPY reads: a quoted name or "(query)"
	switch {
	case opts.Query != "":
		q := strings.TrimRight(strings.TrimSpace(opts.Query), "; \t\r\n")
		noParams := func(st *duckdb.Stmt) error {
			if st.NumInput() > 0 {
				return errors.New("an export query takes no parameters")
			}
			return nil
		}
		if err := prepareSelect(ctx, conn, q, noParams); err != nil {
			return 0, fmt.Errorf("export: query: %w", canceled(ctx, err))
		}
		// The newlines end a trailing "--" comment of the query before the parenthesis.
		source = "(\n" + q + "\n)"
	default:
		name := opts.Table
		if name == "" {
			name = DefaultExportTable
		}
		if source, err = resolveTable(ctx, conn, name); err != nil {
			return 0, err
		}
	}

	options := []string{"FORMAT " + format}
	if format == "csv" {
		options = append(options, "HEADER true")
	}
	if opts.PartitionBy != "" {
		col, err := resultColumn(ctx, conn, source, opts.PartitionBy)
		if err != nil {
			return 0, err
		}
		options = append(options, "PARTITION_BY ("+quoteIdent(col)+")")
	}

	// dest is the path COPY writes: a temporary file or folder beside the output, renamed
	// into place by commit once COPY has succeeded. copyTo, when set, receives a file
	// DuckDB wrote in the system's temporary folder: stdout, or an output that is not a
	// regular file (a pipe, a device), which COPY must not open by name.
	var dest string
	var commit func() error
	var copyTo io.Writer
	toStdout := opts.Output == "" || opts.Output == "-"
	switch {
	case opts.PartitionBy != "":
		d, err := outfile.CreateDir(opts.Output)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		defer d.Abort()
		dest, commit = d.Name(), d.Commit
	case toStdout:
		copyTo, commit = opts.Stdout, func() error { return nil }
	default:
		f, err := outfile.Create(opts.Output)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		defer f.Abort()
		commit = f.Commit
		if name, ok := f.TempName(); ok {
			dest = name
		} else {
			copyTo = f
		}
	}
	if copyTo != nil {
		// The output's name keeps DuckDB's compression by name (.csv.gz).
		name := "out." + format
		if !toStdout {
			name = filepath.Base(opts.Output)
		}
		tmp, err := os.CreateTemp("", "batstat-export-*-"+name)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		dest = tmp.Name()
		tmp.Close()
		defer os.Remove(dest)
	}
	if opts.PartitionBy == "" {
		// dest is a new file of batstat's: DuckDB's own temporary file and rename, for a
		// file that exists, would only write everything twice.
		options = append(options, "USE_TMP_FILE false")
	}

	stmt := "COPY " + source + " TO " + quoteString(dest) + " (" + strings.Join(options, ", ") + ")"
	res, err := conn.ExecContext(ctx, stmt)
	if err != nil {
		to := opts.Output
		if toStdout {
			to = "stdout"
		}
		return 0, fmt.Errorf("export to %s: %w", to, canceled(ctx, err))
	}
	rows, err = res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("export: count rows: %w", err)
	}
	if copyTo != nil {
		f, err := os.Open(dest)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		if _, err := io.Copy(copyTo, f); err != nil {
			return 0, fmt.Errorf("export: write output: %w", err)
		}
	}
	if err := commit(); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	return rows, nil
}

// Validate reports what makes opts unusable whatever the database holds: both a table
// and a query, an unknown format, a partitioned export without an output directory, stdout
// without a writer. Export calls it first.
func (opts ExportOptions) Validate() error {
	if opts.Table != "" && opts.Query != "" {
		return errors.New("export: give a table or a query, not both")
	}
	if _, err := exportFormat(opts.Format, opts.Output, opts.PartitionBy != ""); err != nil {
		return err
	}
	if opts.Output == "" || opts.Output == "-" {
		if opts.PartitionBy != "" {
			return errors.New("export: --partition-by writes a directory: give --output")
		}
		if opts.Stdout == nil {
			return errors.New("export: no output: give a path")
		}
	}
	return nil
}

// ExportExtensions names the extensions Export reads a format from, for messages and help.
const ExportExtensions = ".csv, .json, .jsonl, .ndjson, .parquet, .pq (.gz or .zst after .csv or .json: compressed)"

// exportExtensions maps a known extension to its format; compressed says DuckDB
// compresses it when the name ends in .gz or .zst.
var exportExtensions = map[string]struct {
	format     string
	compressed bool
}{
	".csv": {"csv", true}, ".json": {"json", true}, ".jsonl": {"json", true}, ".ndjson": {"json", true},
	".parquet": {"parquet", false}, ".pq": {"parquet", false},
}

// extFormat returns the format a file name's extension says, "" for a name without an
// extension, and ok false for an extension Export does not know.
func extFormat(name string) (format string, ok bool) {
	base := strings.ToLower(filepath.Base(name))
	ext := filepath.Ext(base)
	compressed := ext == ".gz" || ext == ".zst"
	if compressed {
		ext = filepath.Ext(strings.TrimSuffix(base, ext))
	}
	if ext == "" && !compressed {
		return "", true
	}
	e, known := exportExtensions[ext]
	if !known || compressed && !e.compressed {
		return "", false
	}
	return e.format, true
}

// exportFormat picks the COPY format from the option or the output's extension: a file
// named for one format never gets another silently.
func exportFormat(format, output string, partitioned bool) (string, error) {
	switch format {
	case "", "csv", "json", "parquet":
	default:
		return "", fmt.Errorf("export: unknown format %q (valid: csv, json, parquet)", format)
	}
	toFile := output != "" && output != "-"
	if partitioned || !toFile {
		// A partitioned export's output is a folder, whose name says nothing of its files.
		switch {
		case format != "":
			return format, nil
		case partitioned:
			return "parquet", nil
		}
		return "csv", nil
	}
	named, ok := extFormat(output)
	switch {
	case !ok && format == "":
		return "", fmt.Errorf("export: cannot tell the format of %s from its extension: give --format csv, json or parquet, or name it with one of %s",
			output, ExportExtensions)
	case format == "" && named == "":
		return "csv", nil
	case format == "":
		return named, nil
	case named != "" && named != format:
		return "", fmt.Errorf("export: --format %s, but %s is named as a %s file", format, output, named)
	}
	return format, nil
}

// resolveTable finds a table or view by name (case-insensitive, as DuckDB resolves
// identifiers) in the database's own catalog and returns it quoted.
func resolveTable(ctx context.Context, conn *sql.Conn, name string) (string, error) {
	schema, table, qualified := strings.Cut(name, ".")
	if !qualified {
		schema, table = "", name
	}
	var gotSchema, gotTable string
	err := conn.QueryRowContext(ctx, `
		SELECT table_schema, table_name
		FROM information_schema.tables
		WHERE table_catalog = current_database()
		  AND lower(table_name) = lower($table)
		  AND ($schema = '' OR lower(table_schema) = lower($schema))
		ORDER BY table_schema = 'main' DESC, table_schema
		LIMIT 1`,
		sql.Named("table", table), sql.Named("schema", schema),
	).Scan(&gotSchema, &gotTable)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("export: no table or view named %q", name)
	}
	if err != nil {
		return "", fmt.Errorf("export: look up table %q: %w", name, err)
	}
	return quoteIdent(gotSchema) + "." + quoteIdent(gotTable), nil
}

// resultColumn returns the column of source's result named col (case-insensitive).
func resultColumn(ctx context.Context, conn *sql.Conn, source, col string) (string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT * FROM "+source+" LIMIT 0")
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	for _, c := range cols {
		if strings.EqualFold(c, col) {
			return c, nil
		}
	}
	return "", fmt.Errorf("export: no column %q to partition by (columns: %s)", col, strings.Join(cols, ", "))
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteString quotes a SQL string literal. DuckDB's standard strings take no backslash
// escapes, so doubling the quote is all it needs.
func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
