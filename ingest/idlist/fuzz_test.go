package idlist

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzReader feeds arbitrary bytes through stdin. Whatever they are, reading must not
// panic or loop, errors must be one line, and an accepted ID must be valid and literally
// present in the input (after trimming; a quote inside it appears doubled in the file),
// so the reader never invents an ID.
func FuzzReader(f *testing.F) {
	seeds, err := filepath.Glob(testdata + "*")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, byte(0))
	}
	f.Add([]byte("id;campaign\n\"a\"\"b\";x\n"), byte(';'))
	f.Add([]byte("\"abc\ndef\n"), byte(0))
	f.Add([]byte("id\r\"x\"\"\ry\r"), byte(0))

	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		opts := Options{}
		if delim == ',' || delim == ';' || delim == '\t' || delim == '|' {
			opts.Delimiter = rune(delim)
		}
		r, err := Open("-", bytes.NewReader(data), opts)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open error has more than one line: %q", err)
			}
			return
		}
		defer r.Close()

		text := data
		if len(data) >= 2 && data[0] == 0x1F && data[1] == 0x8B {
			// What Open saw: the decompressed bytes, as far as they go.
			if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				text, _ = io.ReadAll(io.LimitReader(zr, 1<<24))
			}
		}
		// Each call consumes at least one line, so this many calls must reach the end.
		limit := bytes.Count(text, []byte("\n")) + bytes.Count(text, []byte("\r")) + 3
		for range limit {
			row, rej, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "stdin line ") {
					t.Fatalf("Next error is not one line naming stdin and a line: %q", err)
				}
				return
			}
			if (row == nil) == (rej == nil) {
				t.Fatalf("Next() = %v, %v; want exactly one", row, rej)
			}
			if rej != nil {
				if rej.Reason == "" || rej.Kind == "" || rej.Line < 1 || !utf8.ValidString(rej.Raw) || !utf8.ValidString(rej.ID) || len(rej.Raw) > MaxRawLength {
					t.Fatalf("bad rejected row %+v", rej)
				}
				continue
			}
			id := row.ID
			if id == "" || len(id) > MaxIDLength || !utf8.ValidString(id) || id != trim(id) || row.Line < 1 {
				t.Fatalf("bad row %+v", row)
			}
			for _, c := range id {
				if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
					t.Fatalf("row ID %q has %U", id, c)
				}
			}
			if !bytes.Contains(text, []byte(id)) && !bytes.Contains(text, []byte(strings.ReplaceAll(id, `"`, `""`))) {
				t.Fatalf("row ID %q is not in the input %q", id, text)
			}
		}
		t.Fatalf("no end after %d calls to Next", limit)
	})
}
