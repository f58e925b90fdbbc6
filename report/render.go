package report

import (
	"encoding/csv"
	"encoding/json"
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
//     With several results each is preceded by a line "# name", and results are separated
//     by a blank line.
//   - json: one result prints a JSON array of row objects, keys in column order; numbers
//     are JSON numbers (DECIMAL exact, never through float64), NULL is null, times are
//     RFC 3339 strings, JSON columns are nested JSON (duckdb-go decodes them into Go maps,
//     so their keys come out sorted). Several results print an object
//     {"name": [rows], ...}. No TOTAL.
func Render(w io.Writer, format Format, results []*Result) error {
	switch format {
	case FormatJSON:
		return renderJSON(w, results)
	case FormatCSV:
		for i, r := range results {
			if len(results) > 1 {
				sep := ""
				if i > 0 {
					sep = "\n"
				}
				if _, err := fmt.Fprintf(w, "%s# %s\n", sep, r.Name); err != nil {
					return err
				}
			}
			if err := renderCSV(w, r); err != nil {
				return err
			}
		}
		return nil
	case FormatTable, FormatMarkdown:
		for i, r := range results {
			out, err := renderTable(r, format == FormatMarkdown)
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
			if _, err := io.WriteString(w, head+out); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := ParseFormat(string(format))
	return err
}

func renderCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	rec := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, v := range row {
			rec[i] = text(v, r.Types[i], false)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func renderJSON(w io.Writer, results []*Result) error {
	rowsOf := func(r *Result) []any {
		rows := make([]any, len(r.Rows))
		for j, row := range r.Rows {
			o := &object{}
			for i, v := range row {
				o.add(r.Columns[i], jsonValue(v, r.Types[i]))
			}
			rows[j] = o
		}
		return rows
	}
	var doc any
	if len(results) == 1 {
		doc = rowsOf(results[0])
	} else {
		o := &object{}
		for _, r := range results {
			if slices.Contains(o.keys, r.Name) {
				return fmt.Errorf("report %s given twice: a JSON object cannot hold it twice", r.Name)
			}
			o.add(r.Name, rowsOf(r))
		}
		doc = o
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// renderTable renders one result as an aligned text table (go-pretty's StyleDefault: plain
// ASCII, readable in a terminal and in a cron log) or a markdown pipe table, with a trailing
// newline. Column names are printed as the SQL names them; numeric columns, their header
// and their TOTAL cell are right-aligned, the others left-aligned, whatever the rows hold
// (go-pretty would otherwise guess from the cells, and right-align every column of an empty
// result).
func renderTable(r *Result, markdown bool) (string, error) {
	total, err := totalRow(r)
	if err != nil {
		return "", err
	}
	// One row per line: line breaks are shown escaped in a text table and as <br> in
	// markdown, so go-pretty never splits a cell over several lines. A lone "\r" would make
	// go-pretty drop what precedes it. go-pretty escapes "|" in markdown cells itself.
	clean := strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`)
	if markdown {
		clean = strings.NewReplacer("\r", "", "\n", "<br>", "\t", " ")
	}
	t := table.NewWriter()
	t.SetStyle(table.StyleDefault)
	t.Style().Format.Header = prettytext.FormatDefault
	t.Style().Format.Footer = prettytext.FormatDefault
	t.Style().Markdown.PadContent = true

	configs := make([]table.ColumnConfig, len(r.Columns))
	for i, typ := range r.Types {
		align := prettytext.AlignLeft
		if isNumeric(typ) {
			align = prettytext.AlignRight
		}
		configs[i] = table.ColumnConfig{Number: i + 1, Align: align, AlignHeader: align, AlignFooter: align}
		if markdown {
			configs[i].WidthMin = 3 // as wide as the "---" under it
		}
	}
	cells := func(s []string) table.Row {
		row := make(table.Row, len(s))
		for i, c := range s {
			c = clean.Replace(c)
			// go-pretty measures a markdown cell before it escapes "|": widen the column
			// by the escapes so that the pipes still line up.
			if n := strings.Count(c, "|"); markdown && n > 0 {
				configs[i].WidthMin = max(configs[i].WidthMin, prettytext.StringWidthWithoutEscSequences(c)+n)
			}
			row[i] = c
		}
		return row
	}

	t.AppendHeader(cells(r.Columns))
	rows := make([]table.Row, len(r.Rows))
	for j, row := range r.Rows {
		s := make([]string, len(row))
		for i, v := range row {
			s[i] = text(v, r.Types[i], true)
		}
		rows[j] = cells(s)
	}
	t.AppendRows(rows)
	if total != nil {
		t.AppendFooter(cells(total))
	}
	t.SetColumnConfigs(configs)

	var out string
	if markdown {
		out = t.RenderMarkdown()
	} else {
		out = t.Render()
	}
	if out == "" {
		return "", nil
	}
	return out + "\n", nil
}
