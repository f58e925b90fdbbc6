package idlist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.csv", "a.csv", "c.txt", "x[1].csv"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "stdin", args: []string{"-"}, want: []string{"-"}},
		{name: "none", args: nil, want: nil},
		// A literal name is Open's to check.
		{name: "literal", args: []string{p("missing.csv")}, want: []string{p("missing.csv")}},
		// Sorted, without the directory that matches too.
		{name: "glob", args: []string{p("*.csv")}, want: []string{p("a.csv"), p("b.csv"), p("x[1].csv")}},
		// A file whose name looks like a pattern that matches nothing.
		{name: "pattern-like name", args: []string{p("x[1].csv")}, want: []string{p("x[1].csv")}},
		{
			name: "order of arguments kept",
			args: []string{p("c.txt"), p("?.csv"), "-"},
			want: []string{p("c.txt"), p("a.csv"), p("b.csv"), "-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.args)
			if err != nil {
				t.Fatalf("Expand(%q) = %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Expand(%q): (-want +got)\n%s", tt.args, diff)
			}
		})
	}

	errTests := []struct {
		arg  string
		want string
	}{
		{arg: p("*.gz"), want: p("*.gz") + ": no files match"},
		{arg: p("sub*"), want: p("sub*") + ": no files match"}, // only a directory matches
		{arg: p("[z"), want: p("[z") + ": syntax error in pattern"},
	}
	for _, tt := range errTests {
		got, err := Expand([]string{p("a.csv"), tt.arg})
		if err == nil || err.Error() != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want error %q", tt.arg, got, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Expand(%q) error %q is more than one line", tt.arg, err)
		}
	}
}
