package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// nmLine is one line of `go tool nm`: an address (blank for undefined symbols), a one-letter
// kind, then the name, which may itself contain spaces (type:struct { ... }).
var nmLine = regexp.MustCompile(`^\s*[0-9a-f]*\s+(\S)\s+(.+)$`)

// TestBinaryHasNoTestCode guards against test packages creeping into the shipped binary:
// importing testing or net/http/httptest from a non-test package links their init code
// and flags into every batstat a user runs.
func TestBinaryHasNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "tool", "nm", binary).Output()
	if err != nil {
		t.Fatalf("go tool nm %s: %v", binary, err)
	}
	var bad []string
	symbols := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := nmLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		symbols++
		if name := m[2]; strings.HasPrefix(name, "testing.") || strings.HasPrefix(name, "net/http/httptest.") {
			bad = append(bad, name)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// A parse that matched nothing would pass vacuously.
	if symbols < 1000 {
		t.Fatalf("go tool nm %s: parsed %d symbols, want thousands", binary, symbols)
	}
	if len(bad) > 0 {
		t.Errorf("the batstat binary links test code, %d symbols such as %q; a non-test package imports testing or net/http/httptest (go list -deps ./cmd/batstat)",
			len(bad), bad[:min(len(bad), 5)])
	}
}
