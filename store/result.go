package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// resultTable is the name of the temporary table a ResultTable fills. Temporary tables
// belong to their connection, so one name serves every connection; it is qualified with
// the temporary catalog so that a table of the file with the same name is never read.
const resultTable = "temp.main.batstat_result"

// A ResultTable is the result of a query held in a temporary table of one connection, to
// be read back in pages, in the query's order.
//
// A query read through duckdb-go is executed to a materialised result, held whole in memory
// and outside DuckDB's memory_limit, before its first row can be read. A temporary table
// lives in DuckDB's buffer pool instead: within memory_limit, the rest moved to
// temp_directory. The price is a copy of the result (its time, and disk beyond the limit).
// A read-only database allows it: a temporary table is the connection's, not the file's.
type ResultTable struct {
	conn *sql.Conn
	rows int64
}

// NewResultTable runs query on conn into a temporary table that replaces the one conn may
// already hold. query must be a single SELECT statement with columns result columns, which
// the caller has checked; the table's columns are named c1, c2, ..., so that the query's
// own names (duplicates, a column named rowid) cannot clash. DESCRIBE, SHOW and SUMMARIZE
// cannot fill a table. The caller must Drop the table.
func NewResultTable(ctx context.Context, conn *sql.Conn, query string, columns int) (*ResultTable, error) {
	if columns < 1 {
		return nil, fmt.Errorf("result table: %d columns", columns)
	}
	names := make([]string, columns)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i+1)
	}
	// The query text follows AS unchanged: it was parsed alone as one SELECT, so it ends
	// the statement whatever it holds (comments, a final semicolon). Insertion order is
	// preserved (DuckDB's default, which a query cannot change), so rowid follows the
	// query's order.
	create := "CREATE OR REPLACE TEMP TABLE " + resultTable + " (" + strings.Join(names, ", ") + ") AS\n" + query
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return nil, err
	}
	t := &ResultTable{conn: conn}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+resultTable).Scan(&t.rows); err != nil {
		t.Drop(ctx)
		return nil, fmt.Errorf("count the result: %w", err)
	}
	return t, nil
}

// Len returns the number of rows of the result.
func (t *ResultTable) Len() int64 { return t.rows }

// Page returns at most n rows of the result, from row from on (0 is the first), in order.
// Its columns are named c1, c2, ... The caller must close the rows before the next Page.
func (t *ResultTable) Page(ctx context.Context, from int64, n int) (*sql.Rows, error) {
	// Table order, which DuckDB keeps in a scan as it preserves insertion order; the rowid
	// bounds let the scan skip the row groups outside the page.
	return t.conn.QueryContext(ctx, "SELECT * FROM "+resultTable+" WHERE rowid >= $1 AND rowid < $2", from, from+int64(n))
}

// Drop drops the table, releasing its memory and its part of temp_directory. It works when
// ctx is done, so that a canceled query does not leave the table on a pooled connection.
func (t *ResultTable) Drop(ctx context.Context) error {
	if _, err := t.conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+resultTable); err != nil {
		return fmt.Errorf("drop the result table: %w", err)
	}
	return nil
}
