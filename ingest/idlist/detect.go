package idlist

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// column is one of the columns idlist knows; its index in a record lives in Reader.cols.
type column int

const (
	colID column = iota
	colCampaign
	colRecipient
	colSentAt
	colCustomerMessageID
	colMessagelistID
	numColumns
)

// aliases are the normalised header names of each column (see normalize), the preferred
// one first: a file with both "messageId" and "id" columns takes its IDs from messageId,
// because an "id" next to it is usually a row number from a database export. The names
// of a message's ID come first (messageId, msg_id, "SMS ID", message_uuid), then the
// generic ones (uuid, id).
var aliases = [numColumns][]string{
	colID:                {"messageid", "msgid", "smsid", "messageuuid", "uuid", "id"},
	colCampaign:          {"campaign"},
	colRecipient:         {"recipient", "phone", "phonenumber", "to", "msisdn", "number"},
	colSentAt:            {"sentat", "sent", "senttime", "timestamp"},
	colCustomerMessageID: {"customermessageid", "customerid", "customermsgid"},
	colMessagelistID:     {"messagelistid"},
}

// loneIDAlias names the ID column only when it is a file's one column: next to others,
// "message" is usually the text of the SMS.
const loneIDAlias = "message"

// normalize turns a header name into the form names are compared in: trimmed, lower-case,
// without spaces, '_' and '-', so "Message ID", "message_id" and "MESSAGEID" are one name.
func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-':
			return -1
		}
		return unicode.ToLower(r)
	}, trim(s))
}

// trim removes surrounding white space, including the no-break space and the invisible
// characters spreadsheets and copy-paste leave behind (a BOM, a zero-width space).
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '\uFEFF' || r == '\u200B'
	})
}

// blank reports whether every field of rec is empty after trimming. Such rows are skipped
// like empty lines: spreadsheets write them as ",,,".
func blank(rec []string) bool {
	for _, f := range rec {
		if trim(f) != "" {
			return false
		}
	}
	return true
}

// checkText returns why the start of the (decompressed) input is not CSV text, or nil.
// The test is deliberately loose: a NUL byte in the first KiB (no text file has one;
// UTF-16 and most binary formats do), or many control characters. Invalid UTF-8 alone does
// not make a file binary: a Latin-1 campaign name is text, and that row is rejected.
func checkText(b []byte) error {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return errors.New(`UTF-16 text, not UTF-8: save it as "CSV UTF-8"`)
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return errors.New("a ZIP archive (an Excel workbook?), not CSV text: export it as CSV")
	}
	b = b[:min(len(b), binarySniffLength)]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return fmt.Errorf("binary data, not CSV text (NUL byte at offset %d)", i)
	}
	ctrl := 0
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' || c == 0x7F {
			ctrl++
		}
	}
	// Random bytes are about 10% control characters; a text file with a stray BEL in an ID
	// has a handful, and that row is rejected, not the file.
	if ctrl >= 8 && ctrl*16 > len(b) {
		return fmt.Errorf("binary data, not CSV text (%d control characters in the first %d bytes)", ctrl, len(b))
	}
	return nil
}

// binarySniffLength is how much of the input checkText looks at.
const binarySniffLength = 1024

// detectDelimiter picks the field separator from the first line that has content: the most
// frequent of comma, semicolon and tab outside double quotes, ties going to comma, then
// semicolon. A line without any (a bare list) gets a comma, so that a later line with a
// comma is seen as a row with two fields rather than taken whole as an ID.
func detectDelimiter(b []byte) rune {
	delims := [...]byte{',', ';', '\t'}
	var n [len(delims)]int
	inQuotes, content := false, false
scan:
	for _, c := range b {
		switch {
		case c == '"':
			inQuotes = !inQuotes // a doubled quote toggles twice
			content = true
		case inQuotes:
		case c == '\n' || c == '\r':
			if content {
				break scan
			}
			n = [len(delims)]int{} // a line of only separators, as spreadsheets write
		default:
			if i := bytes.IndexByte(delims[:], c); i >= 0 {
				n[i]++
			} else if c != ' ' {
				content = true
			}
		}
	}
	best := 0
	for i := range n {
		if n[i] > n[best] {
			best = i
		}
	}
	return rune(delims[best])
}

// excelSep recognises the "sep=;" line Excel writes (and reads) before the header to
// declare the separator. It returns the separator if the input starts with such a line.
func excelSep(b []byte) (rune, bool) {
	const prefix = "sep="
	if len(b) < len(prefix)+1 || !strings.EqualFold(string(b[:len(prefix)]), prefix) {
		return 0, false
	}
	line := b[len(prefix):]
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	r, size := utf8.DecodeRune(line)
	if size != len(line) || !validDelim(r) {
		return 0, false
	}
	return r, true
}

// validDelim reports whether encoding/csv accepts d as a separator.
func validDelim(d rune) bool {
	return d != 0 && d != '"' && d != '\r' && d != '\n' && d != unicode.ReplacementChar &&
		!(d >= 0xD800 && d <= 0xDFFF)
}

// defaultCampaign is the campaign of a file without a campaign column: its base name
// without ".gz" and one more extension, so "data/spring.csv.gz" is "spring" while
// "spring.2024.csv" keeps its "2024".
func defaultCampaign(name string) string {
	base := filepath.Base(name)
	s := base
	if ext := filepath.Ext(s); strings.EqualFold(ext, ".gz") {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, filepath.Ext(s))
	if s == "" { // ".csv"
		return base
	}
	return s
}

// describeFields lists header names or first-line values for an error message: quoted,
// escaped and bounded, so the message stays one readable line.
func describeFields(fields []string) string {
	const maxFields, maxLen = 10, 40
	var sb strings.Builder
	for i, f := range fields {
		if i == maxFields {
			fmt.Fprintf(&sb, " … (%d more)", len(fields)-maxFields)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		if len(f) > maxLen {
			f = f[:maxLen] + "…"
		}
		fmt.Fprintf(&sb, "%q", f)
	}
	return sb.String()
}
