package report_test

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/report"
)

// TestRenderCells pins what the fixture goldens do not reach: cells holding "|" or line
// breaks, NULLs, a non-ASCII name, column names kept as written, and an empty result, which
// still aligns its columns by type.
func TestRenderCells(t *testing.T) {
	res := &report.Result{
		Name:    "odd",
		Columns: []string{"name|x", "n", "Rate"},
		Types:   []string{"VARCHAR", "BIGINT", "DOUBLE"},
		Rows: [][]any{
			{"a|b", int64(1), nil},
			{"two\nlines\r\tend", nil, 0.5},
			{"日本", int64(22), 1.0},
		},
		Total: "n",
	}
	empty := &report.Result{Name: "empty", Columns: res.Columns, Types: res.Types, Total: "n"}
	tests := []struct {
		format  report.Format
		results []*report.Result
		want    string
	}{
		{report.FormatTable, []*report.Result{res}, `+-------------------+----+------+
| name|x            |  n | Rate |
+-------------------+----+------+
| a|b               |  1 |      |
| two\nlines\r\tend |    |  0.5 |
| 日本              | 22 |    1 |
+-------------------+----+------+
| TOTAL             | 23 |      |
+-------------------+----+------+
`},
		{report.FormatMarkdown, []*report.Result{res}, `## odd

| name\|x          |   n | Rate |
|:---------------- | ---:| ----:|
| a\|b             |   1 |      |
| two<br>lines end |     |  0.5 |
| 日本             |  22 |    1 |
| TOTAL            |  23 |      |
`},
		{report.FormatTable, []*report.Result{empty, empty}, `empty
+--------+---+------+
| name|x | n | Rate |
+--------+---+------+
| TOTAL  | 0 |      |
+--------+---+------+

empty
+--------+---+------+
| name|x | n | Rate |
+--------+---+------+
| TOTAL  | 0 |      |
+--------+---+------+
`},
		{report.FormatMarkdown, []*report.Result{empty}, `## empty

| name\|x |   n | Rate |
|:------- | ---:| ----:|
| TOTAL   |   0 |      |
`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := report.Render(&buf, tt.format, tt.results); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
			t.Errorf("Render(%s, %s) mismatch (-want +got):\n%s", tt.format, tt.results[0].Name, diff)
		}
	}
}
