package store_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// writeSQL matches SQL that changes a database, its keywords in capitals as batstat writes
// them: such statements belong to package store, which owns the file, so that a reader of
// store sees every way the file can change.
var writeSQL = regexp.MustCompile(`(?s)\b(INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|` +
	`CREATE\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+)?(TABLE|VIEW|MACRO|SEQUENCE|INDEX|SCHEMA)|ALTER\s+TABLE|` +
	`DROP\s+(TABLE|VIEW|MACRO|SEQUENCE|INDEX|SCHEMA)|BEGIN\s+TRANSACTION|COMMIT|ROLLBACK|CHECKPOINT)\b`)

// TestNoWriteSQLOutsideStore reads every string literal of the module's production code
// outside store and fails on one that writes to a database.
func TestNoWriteSQLOutsideStore(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "store" || rel == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if m := writeSQL.FindString(s); m != "" {
				t.Errorf("%s: SQL that writes (%q) outside package store", fset.Position(lit.Pos()), m)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("read %d Go files outside store; the walk missed the module", checked)
	}
}
