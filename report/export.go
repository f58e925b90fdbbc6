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
	// DuckDB writes it; not a JSON array) or parquet. "" = from Output's extension
	// (.csv, .json/.jsonl/.ndjson, .parquet/.pq), else csv.
	Format string
	// Output is the file to write (replaced if it exists), or with PartitionBy the directory
	// to create (it must not hold files yet). "" or "-" = Stdout.
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
// (tests, --output handling) and does not exist on Windows.
func Export(ctx context.Context, db *sql.DB, opts ExportOptions) (rows int64, err error) {
	if err := opts.Validate(); err != nil {
		return 0, err
	}
	format, _ := exportFormat(opts.Format, opts.Output)
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

	toStdout := opts.Output == "" || opts.Output == "-"
	path := opts.Output
	if toStdout {
		f, err := os.CreateTemp("", "batstat-export-*."+format)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		path = f.Name()
		f.Close()
		defer os.Remove(path)
	}

	stmt := "COPY " + source + " TO " + quoteString(path) + " (" + strings.Join(options, ", ") + ")"
	res, err := conn.ExecContext(ctx, stmt)
	if err != nil {
		if opts.PartitionBy != "" && strings.Contains(err.Error(), "not empty") {
			return 0, fmt.Errorf("export: directory %s already holds files; remove it or choose another --output: %w", path, err)
		}
		dest := opts.Output
		if toStdout {
			dest = "stdout"
		}
		return 0, fmt.Errorf("export to %s: %w", dest, canceled(ctx, err))
	}
	rows, err = res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("export: count rows: %w", err)
	}
	if toStdout {
		f, err := os.Open(path)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		if _, err := io.Copy(opts.Stdout, f); err != nil {
			return 0, fmt.Errorf("export: write output: %w", err)
		}
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
	if _, err := exportFormat(opts.Format, opts.Output); err != nil {
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

// exportFormat picks the COPY format from the option or the output's extension.
func exportFormat(format, output string) (string, error) {
	switch format {
	case "csv", "json", "parquet":
		return format, nil
	case "":
		switch strings.ToLower(filepath.Ext(output)) {
		case ".parquet", ".pq":
			return "parquet", nil
		case ".json", ".jsonl", ".ndjson":
			return "json", nil
		}
		return "csv", nil
	}
	return "", fmt.Errorf("export: unknown format %q (valid: csv, json, parquet)", format)
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
