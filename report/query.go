package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/batstat/batstat/store"
)

// A RefusedError is SQL that batstat does not run: more than one statement, or a statement
// that is not a query and so may write a file or the database, or change a setting.
//
// Only a statement that DuckDB's parser reads as a SELECT runs. That covers SELECT with
// WITH, VALUES, FROM-first and TABLE queries, set operations, PIVOT with an IN list and
// UNPIVOT, DESCRIBE, SHOW and SUMMARIZE. Everything else is refused, whatever its text:
// COPY, EXPORT DATABASE, ATTACH, DETACH, INSTALL, LOAD, SET, RESET, USE, CALL, CHECKPOINT,
// PRAGMA, and EXPLAIN, because EXPLAIN ANALYZE runs the statement it explains (EXPLAIN
// ANALYZE COPY ... TO writes the file) and DuckDB reports both as EXPLAIN. A read-only
// database stops INSERT, UPDATE, CREATE and the like too, but not COPY TO, EXPORT,
// ATTACH, INSTALL, LOAD or SET, which write other files or change the session.
//
// The decision is taken by parsing alone (json_serialize_sql), before DuckDB binds the
// statement: binding EXPORT DATABASE already creates its directory. A statement the
// parser accepts as a SELECT is then prepared and must be of statement type SELECT.
type RefusedError struct {
	// SQL is the start of the refused text, for the message.
	SQL string
	// Type is the statement type DuckDB reported when it prepared the statement; 0 when
	// it was refused by the parser.
	Type    duckdb.StmtType
	several bool
}

func (e *RefusedError) Error() string {
	const allowed = "the SQL must be one statement that reads: SELECT (also WITH, VALUES, FROM, TABLE, PIVOT ... IN (...)), DESCRIBE, SHOW or SUMMARIZE, " +
		"with table functions such as FROM pragma_table_info('runs') for PRAGMAs; COPY, EXPORT, ATTACH, INSTALL, LOAD, SET, CALL, PRAGMA and EXPLAIN are refused (batstat export writes files)"
	what := fmt.Sprintf("%q", e.SQL)
	switch {
	case e.several:
		return fmt.Sprintf("refused %s: several statements (a PIVOT without an IN list counts as several); %s", what, allowed)
	case e.Type != 0:
		return fmt.Sprintf("refused %s: DuckDB prepares it as a statement of type %d, not a SELECT; %s", what, e.Type, allowed)
	}
	return fmt.Sprintf("refused %s: a statement in it is not a query; %s", what, allowed)
}

// refused builds a RefusedError quoting the start of query on one line.
func refused(query string, typ duckdb.StmtType, several bool) *RefusedError {
	const maxLen = 60
	q := strings.Join(strings.Fields(query), " ")
	if r := []rune(q); len(r) > maxLen {
		q = string(r[:maxLen]) + "…"
	}
	return &RefusedError{SQL: q, Type: typ, several: several}
}

// queryName is the name of an ad-hoc query's result.
const queryName = "query"

// DefaultMaxTableRows is how many rows Rows.Render shows in the table format when
// RenderOptions.MaxTableRows is 0.
const DefaultMaxTableRows = 10_000

// RenderOptions say how Rows.Render writes a result.
type RenderOptions struct {
	Format Format
	// MaxTableRows bounds the rows the table format holds to align its columns (0 =
	// DefaultMaxTableRows). A text table shows that many and stops; a markdown table
	// goes on, its later rows padded to the widths of the first ones. Other formats are
	// not bounded.
	MaxTableRows int
}

// Rendered counts what Rows.Render wrote.
type Rendered struct {
	Rows  int64 // rows of the result
	Shown int64 // rows written: fewer than Rows only when a text table stopped at its bound
}

// Rows is the result of a running query, read once, front to back, by Render. It holds
// one row at a time: what stays in memory is DuckDB's, not batstat's (see QueryRows).
type Rows struct {
	ctx   context.Context
	conn  *sql.Conn
	src   resultRows
	names []string
	types []string
}

// QueryOptions say how QueryRows holds a result.
type QueryOptions struct {
	// Spill keeps the result within DuckDB's memory_limit: the query fills a temporary
	// table, which DuckDB holds in its buffer pool and moves to its temp_directory beyond
	// the limit, and Render reads it back in pages (see store.ResultTable). It costs a copy
	// of the result, so it is worth it under a memory limit smaller than the result. The
	// results of DESCRIBE, SHOW and SUMMARIZE, which are small and cannot fill a table, are
	// not spilled.
	Spill bool
}

// QueryRows runs ad-hoc SQL with no parameters and returns its result for Render. The SQL
// must be one statement that only reads (see RefusedError); anything else is refused
// before it runs, with a *RefusedError. The caller must Close the Rows.
//
// When ctx is canceled while the query runs or its rows are read, the error wraps
// context.Cause(ctx) rather than DuckDB's interrupt error.
//
// duckdb-go executes every query to a materialised result before the first row is read,
// so unless opts.Spill is set, the whole result sits in DuckDB's memory, outside its
// memory_limit, until Close; Render itself holds one row at a time (a bounded number for
// the table format). Either way the query has run to its end when QueryRows returns.
func QueryRows(ctx context.Context, db *sql.DB, query string, opts QueryOptions) (*Rows, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, queryError(ctx, err)
	}
	var names []string
	if err := prepareSelect(ctx, conn, query, func(st *duckdb.Stmt) error {
		var err error
		names, err = columnNames(st)
		return err
	}); err != nil {
		conn.Close()
		return nil, queryError(ctx, err)
	}
	spill := opts.Spill
	if spill {
		if spill, err = fillsTable(ctx, conn, query); err != nil {
			conn.Close()
			return nil, queryError(ctx, err)
		}
	}
	var src resultRows
	if spill {
		src, err = spillRows(ctx, conn, query, names)
	} else {
		src, err = directRows(ctx, conn, query)
	}
	if err != nil {
		conn.Close()
		return nil, queryError(ctx, err)
	}
	names, types := src.columns()
	return &Rows{ctx: ctx, conn: conn, src: src, names: names, types: types}, nil
}

// columnNames returns the names of a prepared statement's result columns.
func columnNames(st *duckdb.Stmt) ([]string, error) {
	n, err := st.ColumnCount()
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	for i := range names {
		if names[i], err = st.ColumnName(i); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// fillsTable reports whether query, one SELECT, can fill a table: DESCRIBE, SHOW and
// SUMMARIZE are SELECTs to DuckDB, which reads them from a SHOW_REF, but CREATE TABLE AS does
// not take them.
func fillsTable(ctx context.Context, conn *sql.Conn, query string) (bool, error) {
	var show bool
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(json_serialize_sql($1::VARCHAR)
		->'statements'->0->'node'->'from_table'->>'type' = 'SHOW_REF', false)`, query).Scan(&show); err != nil {
		return false, fmt.Errorf("parse: %w", err)
	}
	return !show, nil
}

// directRows runs query and reads its result as duckdb-go hands it over.
func directRows(ctx context.Context, conn *sql.Conn, query string) (*sqlRows, error) {
	// The same text again, now that it is known to be one statement: QueryContext runs
	// nothing before it.
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	src, err := newSQLRows(rows)
	if err != nil {
		rows.Close()
		return nil, err
	}
	return src, nil
}

// spillRows runs query into a result table and reads it back a page at a time. names are
// the query's column names: the table's are c1, c2, ...
func spillRows(ctx context.Context, conn *sql.Conn, query string, names []string) (*pagedRows, error) {
	table, err := store.NewResultTable(ctx, conn, query, len(names))
	if err != nil {
		return nil, err
	}
	// The first page also gives the column types, those of an empty result too.
	rows, err := table.Page(ctx, 0, pageRows)
	if err != nil {
		table.Drop(ctx)
		return nil, err
	}
	page, err := newSQLRows(rows)
	if err != nil {
		rows.Close()
		table.Drop(ctx)
		return nil, err
	}
	page.names = names
	return &pagedRows{ctx: ctx, table: table, page: page, from: pageRows}, nil
}

// Columns returns the column names of the result.
func (r *Rows) Columns() []string { return r.names }

// Types returns the DuckDB type names of the columns, e.g. BIGINT, DECIMAL(18,6).
func (r *Rows) Types() []string { return r.types }

// Render writes the rows to w in opts.Format, as Render writes one Result, row by row as
// it reads them (csv, json and markdown; table up to its bound). It can be called once.
// An error after the first row leaves w with part of the result.
func (r *Rows) Render(w io.Writer, opts RenderOptions) (Rendered, error) {
	var n Rendered
	var err error
	switch opts.Format {
	case FormatCSV:
		n.Rows, err = writeCSV(w, r.names, r.types, r.src)
		n.Shown = n.Rows
	case FormatJSON:
		if n.Rows, err = writeJSON(w, r.names, r.types, r.src, ""); err == nil {
			_, err = io.WriteString(w, "\n")
		}
		n.Shown = n.Rows
	case FormatTable, FormatMarkdown:
		if opts.Format == FormatMarkdown {
			// As Render heads a single result.
			if _, err := io.WriteString(w, "## "+queryName+"\n\n"); err != nil {
				return n, err
			}
		}
		t := tableWriter{markdown: opts.Format == FormatMarkdown, limit: opts.MaxTableRows}
		if t.limit <= 0 {
			t.limit = DefaultMaxTableRows
		}
		var st tableStats
		st, err = t.write(w, r.names, r.types, r.src)
		n = Rendered{Rows: st.rows, Shown: st.shown}
	default:
		_, err = ParseFormat(string(opts.Format))
		return n, err
	}
	if err != nil {
		return n, queryError(r.ctx, err)
	}
	return n, nil
}

// Close releases the result and its connection.
func (r *Rows) Close() error {
	err := r.src.close()
	return errors.Join(err, r.conn.Close())
}

// Query runs ad-hoc SQL like QueryRows and returns its whole result, named "query". It is
// meant for results known to be small.
func Query(ctx context.Context, db *sql.DB, query string) (*Result, error) {
	r, err := QueryRows(ctx, db, query, QueryOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res := &Result{Name: queryName, Columns: r.names, Types: r.types, Rows: [][]any{}}
	for {
		row, err := r.src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, queryError(ctx, err)
		}
		res.Rows = append(res.Rows, append([]any(nil), row...))
	}
	if err := r.Close(); err != nil {
		return nil, queryError(ctx, err)
	}
	return res, nil
}

// queryError adds context to an error of QueryRows: the cause of a cancellation in place
// of DuckDB's interrupt error, and an explanation of a write refused by a read-only
// database, which DuckDB reports as a generic Invalid Input error (the statement types
// that write are refused before they run; this catches the rest, such as nextval()).
func queryError(ctx context.Context, err error) error {
	err = canceled(ctx, err)
	var de *duckdb.Error
	if errors.As(err, &de) && strings.Contains(de.Msg, "read-only mode") {
		return fmt.Errorf("query: the database is opened read-only; batstat query cannot change it: %w", err)
	}
	return fmt.Errorf("query: %w", err)
}

// canceled returns the cause of ctx's cancellation in place of err when ctx is done:
// DuckDB reports an interrupted query as "INTERRUPT Error", which says nothing of why, and
// a caller deciding an exit status by the cause (a signal) needs to find it with errors.As.
func canceled(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return context.Cause(ctx)
}

// resultRows is the source of Rows: a result read as duckdb-go hands it over, or one
// spilled to a table.
type resultRows interface {
	rowSource
	columns() (names, types []string)
	close() error
}

// sqlRows is a rowSource over *sql.Rows: each row is scanned into the same slice, as
// duckdb-go's values (see Result).
type sqlRows struct {
	rows         *sql.Rows
	names, types []string
	vals, ptrs   []any
}

func newSQLRows(rows *sql.Rows) (*sqlRows, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	s := &sqlRows{rows: rows, names: make([]string, len(cts)), types: make([]string, len(cts)),
		vals: make([]any, len(cts)), ptrs: make([]any, len(cts))}
	for i, ct := range cts {
		s.names[i] = ct.Name()
		s.types[i] = ct.DatabaseTypeName()
		s.ptrs[i] = &s.vals[i]
	}
	return s, nil
}

func (s *sqlRows) columns() (names, types []string) { return s.names, s.types }

func (s *sqlRows) close() error { return s.rows.Close() }

func (s *sqlRows) next() ([]any, error) {
	if !s.rows.Next() {
		if err := s.rows.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	if err := s.rows.Scan(s.ptrs...); err != nil {
		return nil, err
	}
	return s.vals, nil
}

// pageRows is how many rows of a result table are read at a time: ten of DuckDB's vectors,
// a sixth of a row group. duckdb-go materialises each page whole, outside DuckDB's memory
// limit, so the page bounds what a spilled result adds to it: about 20 MB for rows of a
// kilobyte. Larger pages save little time (see BENCHMARKS.md).
const pageRows = 20_480

// pagedRows reads a result table a page at a time.
type pagedRows struct {
	ctx   context.Context
	table *store.ResultTable
	page  *sqlRows // the rows of the current page; names and types are the result's
	from  int64    // the first row of the next page
	read  int64    // rows returned by next
}

func (p *pagedRows) columns() (names, types []string) { return p.page.names, p.page.types }

func (p *pagedRows) next() ([]any, error) {
	for {
		row, err := p.page.next()
		if err == nil {
			p.read++
		}
		if err != io.EOF || p.from >= p.table.Len() {
			return row, err
		}
		if err := p.page.close(); err != nil {
			return nil, err
		}
		rows, err := p.table.Page(p.ctx, p.from, pageRows)
		if err != nil {
			return nil, err
		}
		p.page.rows = rows
		p.from += pageRows
	}
}

// skipRest counts the rows not read yet without reading them.
func (p *pagedRows) skipRest() (int64, error) {
	n := p.table.Len() - p.read
	p.read = p.table.Len()
	return n, nil
}

func (p *pagedRows) close() error {
	return errors.Join(p.page.close(), p.table.Drop(p.ctx))
}
