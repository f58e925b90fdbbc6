package idlist

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// sniffRows is how many rows after an unrecognised first line Open reads to judge whether
// that line is a header.
const sniffRows = 20

// charClass is a set of the kinds of characters a value is made of.
type charClass uint8

const (
	classLetter   charClass = 1 << iota // ASCII letters
	classDigit                          // ASCII digits
	classDash                           // '-'
	classUnder                          // '_'
	classSpace                          // white space inside the value
	classPunct                          // any other ASCII character
	classNonASCII                       // anything beyond ASCII: letters of other scripts, symbols
)

func classesOf(s string) charClass {
	var c charClass
	for _, r := range s {
		switch {
		case r >= 0x80:
			c |= classNonASCII
		case r >= '0' && r <= '9':
			c |= classDigit
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			c |= classLetter
		case r == '-':
			c |= classDash
		case r == '_':
			c |= classUnder
		case unicode.IsSpace(r):
			c |= classSpace
		default:
			c |= classPunct
		}
	}
	return c
}

// headerShaped reports whether first, the first line of a one-column file that names no
// column batstat knows, is a header rather than the file's first message ID, judged
// against the values of the rows after it. It says why, for the error message.
//
// First is a header when both hold:
//
//  1. it is a word, not a token: it has at least two letters and no digit, while every
//     row after it has a digit (message IDs are numbers, hex, UUIDs, "msg-000123": they
//     have digits; column names rarely do);
//  2. it does not have the rows' shape: it has a kind of character (letter, digit, '-',
//     '_', space, other punctuation, non-ASCII) that no row has, or the rows all have one
//     length and it has another.
//
// The second test keeps a list of random letters-and-digits IDs loading when its first ID
// happens to have no digit: it is as long as the others and made of the same characters.
// With no row to compare (a file of one line, or only rejected rows after the first)
// nothing can be told, and the line is an ID.
func headerShaped(first string, rows []string) (why string, ok bool) {
	if len(rows) == 0 {
		return "", false
	}
	letters := 0
	for _, r := range first {
		if unicode.IsLetter(r) {
			letters++
		}
	}
	if letters < 2 || classesOf(first)&classDigit != 0 {
		return "", false
	}
	var union charClass
	length, sameLength := len(rows[0]), true
	for _, v := range rows {
		c := classesOf(v)
		if c&classDigit == 0 {
			return "", false
		}
		union |= c
		sameLength = sameLength && len(v) == length
	}
	switch {
	case classesOf(first)&^union != 0:
		return fmt.Sprintf("it has no digit and characters that none of the %s after it has", linesAfter(len(rows))), true
	case !sameLength:
		return fmt.Sprintf("it has no digit while every one of the %s after it has", linesAfter(len(rows))), true
	case len(first) != length:
		return fmt.Sprintf("it has no digit while the %s after it all have, and all are %d characters long", linesAfter(len(rows)), length), true
	}
	return "", false
}

func linesAfter(n int) string {
	if n == 1 {
		return "line"
	}
	return fmt.Sprintf("%d lines", n)
}

// delimiterName names a delimiter as --delimiter takes it.
func delimiterName(d rune) string {
	if d == '\t' {
		return "tab"
	}
	return fmt.Sprintf("'%c'", d)
}

// ParseDelimiter reads a field separator as a user writes it: ",", ";", or a tab as a tab
// character, `\t` or "tab" (any case). "" is 0: detect it from the file. Anything else is
// an error that says what is accepted: Open takes any separator encoding/csv does, but a
// person who asks for another one has most likely mistyped, and a wrong separator turns
// every whole line into an ID.
func ParseDelimiter(s string) (rune, error) {
	switch {
	case s == "":
		return 0, nil
	case s == ",", s == ";":
		return rune(s[0]), nil
	case s == "\t", s == `\t`, strings.EqualFold(s, "tab"):
		return '\t', nil
	}
	return 0, fmt.Errorf(`delimiter %q: want ",", ";" or a tab ("\t" or "tab")`, s)
}

// splitCounts counts, for each of the first lines of sample (up to sniffRows+1, skipping
// blank ones, each a record: quoted line ends do not end one), how many of each candidate
// separator it holds outside quotes. A last line without its line end is counted only when
// the sample holds the whole input (atEOF): otherwise it may be cut short.
func splitCounts(sample []byte, atEOF bool, candidates []byte) [][]int {
	var out [][]int
	cur := make([]int, len(candidates))
	inQuotes, content := false, false
	end := func() {
		if content {
			out = append(out, cur)
		}
		cur = make([]int, len(candidates))
		content = false
	}
	for _, c := range sample {
		if len(out) > sniffRows {
			return out
		}
		switch {
		case c == '"':
			inQuotes = !inQuotes
			content = true
		case inQuotes:
		case c == '\n' || c == '\r':
			end()
		default:
			sep := false
			for i, d := range candidates {
				if c == d {
					cur[i]++
					sep = true
				}
			}
			content = content || !sep && c != ' '
		}
	}
	if atEOF && !inQuotes {
		end()
	}
	return out
}

// checkDelimiter returns an error when a forced delimiter splits none of the first lines
// while another common one splits every one of them into the same number of fields: the
// file was written with that one, and reading it with the forced one would take each
// whole line as an ID.
func checkDelimiter(display string, forced rune, sample []byte, atEOF bool) error {
	if forced >= 0x80 {
		return nil // not a byte: no file written with a common separator is read with it
	}
	common := []byte{',', ';', '\t'}
	candidates := append(slices.Clone(common), byte(forced))
	lines := splitCounts(sample, atEOF, candidates)
	for _, l := range lines {
		if l[len(common)] > 0 {
			return nil
		}
	}
	for i, c := range common {
		if len(lines) == 0 || rune(c) == forced {
			continue
		}
		n := lines[0][i]
		alike := n > 0
		for _, l := range lines {
			alike = alike && l[i] == n
		}
		if alike {
			return fmt.Errorf("%s: --delimiter %s splits none of its first %s, while %s splits every one into %d fields: use --delimiter %s",
				display, delimiterName(forced), linesOf(len(lines)), delimiterName(rune(c)), n+1, delimiterName(rune(c)))
		}
	}
	return nil
}

func linesOf(n int) string {
	if n == 1 {
		return "line"
	}
	return fmt.Sprintf("%d lines", n)
}
