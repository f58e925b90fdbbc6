package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	prettytext "github.com/jedib0t/go-pretty/v6/text"
)

// Format is an output format of Render.
type Format string

// The formats Render writes.
const (
	FormatTable    Format = "table"
	FormatCSV      Format = "csv"
	FormatJSON     Format = "json"
	FormatMarkdown Format = "markdown"
)

// Formats lists the valid formats, the default first.
var Formats = []Format{FormatTable, FormatCSV, FormatJSON, FormatMarkdown}

// ParseFormat checks a --format value; the error names the valid ones.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown format %q (valid: %s)", s, strings.Join(names, ", "))
}

// Render writes results to w in format:
//
//   - table: an aligned text table per result, numbers right-aligned, NULL empty, DOUBLE
//     values rounded to 4 decimals, and a TOTAL row when the report declares one (see
//     Result.Total). With several results each table is preceded by a line with its name
//     and separated from the next by a blank line.
//   - markdown: the same, as pipe tables, each under a "## name" heading.
//   - csv: a header row then one row per result row: NULL empty, DECIMAL exact with its
//     scale (0.050000), DOUBLE in full precision, times in RFC 3339 (UTC). No TOTAL row.
//     A csv file holds one table: several results are refused (render each on its own).
//   - json: one result prints a JSON array of row objects, keys in column order; numbers
//     are JSON numbers (DECIMAL exact, never through float64), NULL is null, times are
//     RFC 3339 strings, JSON columns are nested JSON (duckdb-go decodes them into Go maps,
//     so their keys come out sorted). Several results print an object
//     {"name": [rows], ...}. No TOTAL.
//
// Rows.Render writes a query's result in the same formats, one row at a time.
func Render(w io.Writer, format Format, results []*Result) error {
	switch format {
	case FormatJSON:
		if len(results) == 1 {
			r := results[0]
			if _, err := writeJSON(w, r.Columns, r.Types, newSliceRows(r.Rows), ""); err != nil {
				return err
			}
			_, err := io.WriteString(w, "\n")
			return err
		}
		var names []string
		if _, err := io.WriteString(w, "{"); err != nil {
			return err
		}
		for i, r := range results {
			if slices.Contains(names, r.Name) {
				return fmt.Errorf("report %s given twice: a JSON object cannot hold it twice", r.Name)
			}
			names = append(names, r.Name)
			key, err := marshal(r.Name)
			if err != nil {
				return err
			}
			sep := ","
			if i == 0 {
				sep = ""
			}
			if _, err := fmt.Fprintf(w, "%s\n  %s: ", sep, key); err != nil {
				return err
			}
			if _, err := writeJSON(w, r.Columns, r.Types, newSliceRows(r.Rows), "  "); err != nil {
				return err
			}
		}
		end := "\n}\n"
		if len(results) == 0 {
			end = "}\n"
		}
		_, err := io.WriteString(w, end)
		return err
	case FormatCSV:
		if len(results) > 1 {
			return fmt.Errorf("csv holds one table, not %d: render each result on its own", len(results))
		}
		for _, r := range results {
			if _, err := writeCSV(w, r.Columns, r.Types, newSliceRows(r.Rows)); err != nil {
				return err
			}
		}
		return nil
	case FormatTable, FormatMarkdown:
		for i, r := range results {
			total, err := totalRow(r)
			if err != nil {
				return fmt.Errorf("report %s: %w", r.Name, err)
			}
			var head string
			switch {
			case format == FormatMarkdown:
				head = "## " + r.Name + "\n\n"
			case len(results) > 1:
				head = r.Name + "\n"
			}
			if i > 0 {
				head = "\n" + head
			}
			if _, err := io.WriteString(w, head); err != nil {
				return err
			}
			t := tableWriter{markdown: format == FormatMarkdown, footer: total}
			if _, err := t.write(w, r.Columns, r.Types, newSliceRows(r.Rows)); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := ParseFormat(string(format))
	return err
}

// rowSource yields the rows of one result in order: a Result's rows, or a query's rows
// as DuckDB hands them over.
type rowSource interface {
	// next returns the next row, or io.EOF after the last one. The row is valid until
	// the next call.
	next() ([]any, error)
}

// sliceRows is a rowSource over rows held in memory.
type sliceRows struct {
	rows [][]any
	i    int
}

func newSliceRows(rows [][]any) *sliceRows { return &sliceRows{rows: rows} }

func (s *sliceRows) next() ([]any, error) {
	if s.i == len(s.rows) {
		return nil, io.EOF
	}
	s.i++
	return s.rows[s.i-1], nil
}

// skipRest reads src to its end and returns how many rows it skipped. A source that knows
// how many rows it has left (a result table) says so without reading them.
func skipRest(src rowSource) (int64, error) {
	if c, ok := src.(interface{ skipRest() (int64, error) }); ok {
		return c.skipRest()
	}
	for n := int64(0); ; n++ {
		if _, err := src.next(); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
	}
}

// writeCSV writes a header row then one record per row, and returns the number of rows.
// encoding/csv buffers its output, so rows reach w in blocks, not one write per row.
func writeCSV(w io.Writer, names, types []string, src rowSource) (int64, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(names); err != nil {
		return 0, err
	}
	rec := make([]string, len(names))
	var n int64
	for {
		row, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			cw.Flush()
			return n, errors.Join(err, cw.Error())
		}
		for i, v := range row {
			rec[i] = text(v, types[i], false)
		}
		if err := cw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	cw.Flush()
	return n, cw.Error()
}

// writeJSON writes the rows as a JSON array of objects, keys in column order, indented by
// two spaces as json.Encoder.SetIndent("", "  ") would print it, the array itself starting
// at indent (the indentation of the line it is on) and ending without a newline. Each row
// is marshalled and written on its own, so nothing but one row is held.
func writeJSON(w io.Writer, names, types []string, src rowSource, indent string) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var compact, pretty bytes.Buffer
	for {
		row, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, errors.Join(err, bw.Flush())
		}
		o := &object{keys: names, vals: make([]any, len(row))}
		for i, v := range row {
			o.vals[i] = jsonValue(v, types[i])
		}
		b, err := o.MarshalJSON()
		if err != nil {
			return n, err
		}
		compact.Reset()
		compact.Write(b)
		pretty.Reset()
		if err := json.Indent(&pretty, compact.Bytes(), indent+"  ", "  "); err != nil {
			return n, err
		}
		sep := ",\n"
		if n == 0 {
			sep = "[\n"
		}
		bw.WriteString(sep + indent + "  ")
		bw.Write(pretty.Bytes())
		n++
	}
	if n == 0 {
		bw.WriteString("[]")
	} else {
		bw.WriteString("\n" + indent + "]")
	}
	return n, bw.Flush()
}

// markdownBatch is how many rows of a long markdown table are rendered at a time once the
// first rows have set the column widths.
const markdownBatch = 1024

// tableWriter renders the table and markdown formats with go-pretty: StyleDefault (plain
// ASCII, readable in a terminal and in a cron log) or markdown pipe tables. Column names
// are printed as the SQL names them; numeric columns, their header and their TOTAL cell are
// right-aligned, the others left-aligned, whatever the rows hold (go-pretty would
// otherwise guess from the cells, and right-align every column of an empty result).
//
// Aligned columns need the width of every cell before the first line is written, so the
// writer holds at most limit rows (0 = all of them). Past that a text table stops: the
// rows it holds are shown, the others only counted. A markdown table goes on: its later
// rows are rendered in batches padded to the widths of the first ones, and a wider cell
// only widens its own row, which markdown allows.
type tableWriter struct {
	markdown bool
	footer   []string // the TOTAL row, or nil; shown only when every row is
	limit    int
}

// tableStats counts the rows of a result and those a table showed.
type tableStats struct {
	rows, shown int64
}

func (t tableWriter) write(w io.Writer, names, types []string, src rowSource) (tableStats, error) {
	var st tableStats
	// One row per line: line breaks are shown escaped in a text table and as <br> in
	// markdown, so go-pretty never splits a cell over several lines. A lone "\r" would make
	// go-pretty drop what precedes it. go-pretty escapes "|" in markdown cells itself.
	clean := strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`)
	if t.markdown {
		clean = strings.NewReplacer("\r", "", "\n", "<br>", "\t", " ")
	}
	configs := make([]table.ColumnConfig, len(names))
	widths := make([]int, len(names)) // as go-pretty measures the columns of the first rows
	for i, typ := range types {
		align := prettytext.AlignLeft
		if isNumeric(typ) {
			align = prettytext.AlignRight
		}
		configs[i] = table.ColumnConfig{Number: i + 1, Align: align, AlignHeader: align, AlignFooter: align}
		if t.markdown {
			configs[i].WidthMin = 3 // as wide as the "---" under it
			widths[i] = 3
		}
	}
	cells := func(s []string) table.Row {
		row := make(table.Row, len(s))
		for i, c := range s {
			c = clean.Replace(c)
			width := prettytext.LongestLineLen(c)
			// go-pretty measures a markdown cell before it escapes "|": widen the column
			// by the escapes so that the pipes still line up.
			if n := strings.Count(c, "|"); t.markdown && n > 0 {
				width += n
				configs[i].WidthMin = max(configs[i].WidthMin, width)
			}
			widths[i] = max(widths[i], width)
			row[i] = c
		}
		return row
	}
	texts := make([]string, len(names))
	rowCells := func(row []any) table.Row {
		for i, v := range row {
			texts[i] = text(v, types[i], true)
		}
		return cells(texts)
	}
	newTable := func() table.Writer {
		tw := table.NewWriter()
		tw.SetStyle(table.StyleDefault)
		tw.Style().Format.Header = prettytext.FormatDefault
		tw.Style().Format.Footer = prettytext.FormatDefault
		tw.Style().Markdown.PadContent = true
		return tw
	}
	render := func(tw table.Writer) error {
		tw.SetColumnConfigs(configs)
		var out string
		if t.markdown {
			out = tw.RenderMarkdown()
		} else {
			out = tw.Render()
		}
		if out == "" {
			return nil
		}
		_, err := io.WriteString(w, out+"\n")
		return err
	}

	// The first rows, up to the limit, and the row after them if there is one.
	tw := newTable()
	tw.AppendHeader(cells(names))
	var pending []any
	for {
		row, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		if t.limit > 0 && st.shown == int64(t.limit) {
			pending = row
			break
		}
		tw.AppendRow(rowCells(row))
		st.shown++
	}
	st.rows = st.shown
	if pending == nil && t.footer != nil {
		tw.AppendFooter(cells(t.footer))
	}
	if err := render(tw); err != nil {
		return st, err
	}
	if pending == nil {
		return st, nil
	}

	if !t.markdown {
		n, err := skipRest(src)
		st.rows += 1 + n // the pending row and the rest
		return st, err
	}
	first := slices.Clone(widths)
	for pending != nil {
		tw := newTable()
		for i := range configs {
			configs[i].WidthMin = first[i]
		}
		tw.AppendRow(rowCells(pending))
		pending = nil
		for n := 1; n < markdownBatch; n++ {
			row, err := src.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return st, err
			}
			tw.AppendRow(rowCells(row))
		}
		st.rows += int64(tw.Length())
		if err := render(tw); err != nil {
			return st, err
		}
		if tw.Length() == markdownBatch {
			row, err := src.next()
			if err != nil && err != io.EOF {
				return st, err
			}
			pending = row
		}
	}
	st.shown = st.rows
	return st, nil
}
