package idlist

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRawLength bounds Rejected.Raw, in bytes, including the "…" that marks a cut: a
// rejected row is evidence for a person, not a copy of a runaway quoted field.
const MaxRawLength = 1024

// lineFeeder hands the csv.Reader its input at most one line per Read call and keeps a copy
// of what it handed out since the last mark.
//
// encoding/csv does not expose the text of a record, and it wraps its input in a
// bufio.Reader that would normally read far ahead. Because bufio only asks for more input
// when it holds no complete line, and we never hand out more than one line, the csv
// reader's buffer is empty whenever Read returns a record: the bytes fed since the last
// mark are exactly that record (plus any empty lines csv skipped before it). That is how
// Rejected.Raw shows the row as it was in the file.
type lineFeeder struct {
	br *bufio.Reader
	// eol is the byte that ends a line: '\n', or '\r' for old Mac files (which we hand
	// to csv as '\n' so that it, too, sees lines).
	eol byte
	// lines counts the line ends fed so far, for naming the line of a read error.
	lines int64
	raw   []byte // the first MaxRawLength bytes fed since mark
	cut   bool   // more than MaxRawLength bytes were fed since mark
	wrap  func(error) error
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.br.Buffered() == 0 {
		if _, err := f.br.Peek(1); err != nil {
			if f.wrap != nil {
				err = f.wrap(err)
			}
			return 0, err
		}
	}
	b, _ := f.br.Peek(min(len(p), f.br.Buffered()))
	if i := bytes.IndexByte(b, f.eol); i >= 0 {
		b = b[:i+1]
	}
	n := copy(p, b)
	f.br.Discard(n) // cannot fail: n bytes are buffered
	p = p[:n]
	if f.eol != '\n' {
		for i, c := range p {
			if c == f.eol {
				p[i] = '\n'
			}
		}
	}
	if p[n-1] == '\n' {
		f.lines++
	}
	if room := MaxRawLength - len(f.raw); room > 0 {
		f.raw = append(f.raw, p[:min(room, n)]...)
		f.cut = f.cut || n > room
	} else {
		f.cut = true
	}
	return n, nil
}

// mark forgets what was fed so far: the next record starts here.
func (f *lineFeeder) mark() {
	f.raw = f.raw[:0]
	f.cut = false
}

// record returns the text fed since mark without the empty lines csv skipped before the
// record and without its final line end, made valid UTF-8 and bounded to MaxRawLength.
func (f *lineFeeder) record() string {
	b := f.raw
	for {
		if bytes.HasPrefix(b, []byte("\n")) {
			b = b[1:]
		} else if bytes.HasPrefix(b, []byte("\r\n")) {
			b = b[2:]
		} else {
			break
		}
	}
	cut := f.cut
	if !cut {
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
	}
	return printable(b, true, cut)
}

// printable makes s safe to store and show: bytes that are not UTF-8 and control
// characters become \xNN (\uNNNN above ASCII) so that nothing invisible or undecodable
// reaches a database column or a terminal. With keepLines, tab, CR and LF stay as they are
// (a raw multi-line row should still look like one). The result is at most MaxRawLength
// bytes; a cut (here or already made by the caller) is marked with "…".
func printable[T string | []byte](s T, keepLines, cut bool) string {
	const mark = "…"
	var sb strings.Builder
	keep := -1 // the length to cut back to, if we must: room left for the mark
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
			size = 1
		case keepLines && (r == '\t' || r == '\n' || r == '\r'):
			piece = string(r)
		case unicode.IsControl(r) && r < utf8.RuneSelf:
			piece = fmt.Sprintf(`\x%02x`, r)
		case unicode.IsControl(r):
			piece = fmt.Sprintf(`\u%04x`, r)
		default:
			piece = string(s[i : i+size])
		}
		if keep < 0 && sb.Len()+len(piece) > MaxRawLength-len(mark) {
			keep = sb.Len()
		}
		if sb.Len()+len(piece) > MaxRawLength {
			cut = true
			break
		}
		sb.WriteString(piece)
		i += size
	}
	if !cut {
		return sb.String()
	}
	if keep < 0 {
		keep = sb.Len()
	}
	return sb.String()[:keep] + mark
}
