package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mattn/go-runewidth"
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

// renderTable renders one result as an aligned text table or a markdown pipe table.
//
// It is written here rather than with go-pretty: go-pretty's text package needs
// golang.org/x/text, which go.mod/go.sum of this module do not provide, and the few rules
// batstat needs (right-aligned numbers, a TOTAL row, display width of non-ASCII names via
// go-runewidth) fit in this function.
func renderTable(r *Result, markdown bool) (string, error) {
	total, err := totalRow(r)
	if err != nil {
		return "", err
	}
	clean := strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`)
	if markdown {
		clean = strings.NewReplacer("|", `\|`, "\r", "", "\n", "<br>", "\t", " ")
	}
	lines := [][]string{make([]string, len(r.Columns))}
	for i, c := range r.Columns {
		lines[0][i] = clean.Replace(c)
	}
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = clean.Replace(text(v, r.Types[i], true))
		}
		lines = append(lines, cells)
	}
	if total != nil {
		lines = append(lines, total)
	}
	widths := make([]int, len(r.Columns))
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], runewidth.StringWidth(c))
		}
	}
	if markdown {
		for i := range widths {
			widths[i] = max(widths[i], 4) // room for "---:"
		}
	}
	right := make([]bool, len(r.Columns))
	for i, typ := range r.Types {
		right[i] = isNumeric(typ)
	}

	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, w := range widths {
			b.WriteString(strings.Repeat("-", w+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(cells []string) {
		b.WriteByte('|')
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-runewidth.StringWidth(c))
			if right[i] {
				c = pad + c
			} else {
				c += pad
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteByte('\n')
	}
	if markdown {
		line(lines[0])
		b.WriteByte('|')
		for i, w := range widths {
			if right[i] {
				b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
			} else {
				b.WriteString(" " + strings.Repeat("-", w) + " |")
			}
		}
		b.WriteByte('\n')
		for _, l := range lines[1:] {
			line(l)
		}
		return b.String(), nil
	}
	rule()
	line(lines[0])
	rule()
	for _, l := range lines[1 : len(lines)-btoi(total != nil)] {
		line(l)
	}
	if total != nil {
		rule()
		line(total)
	}
	rule()
	return b.String(), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
