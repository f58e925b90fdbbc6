package idlist

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testdata is where the sample inputs live, shared with the rest of batstat.
const testdata = "../../testdata/idlist/"

// contents is everything a Reader yields for one input.
type contents struct {
	Columns  []string
	Rows     []Row
	Rejected []Rejected
}

// readAll opens name and reads it to the end. The error is Open's, or the first fatal one
// from Next; what was read before it is returned too.
func readAll(t *testing.T, name string, stdin io.Reader, opts Options) (contents, error) {
	t.Helper()
	r, err := Open(name, stdin, opts)
	if err != nil {
		return contents{}, err
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	}()
	got := contents{Columns: r.Columns()}
	for {
		row, rej, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if (row == nil) == (rej == nil) {
			t.Fatalf("Next() = %v, %v, nil; want exactly one of row and rejected", row, rej)
		}
		if row != nil {
			got.Rows = append(got.Rows, *row)
		} else {
			got.Rejected = append(got.Rejected, *rej)
		}
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		file string
		opts Options
		want contents
	}{{
		// Quoted fields with the delimiter, doubled quotes and newlines inside; an empty
		// campaign cell falls back to the file's name; a space before a quote is allowed.
		file: "quoted.csv",
		want: contents{
			Columns: []string{"messageId", "campaign", "recipient"},
			Rows: []Row{
				{Line: 2, ID: "q1", Campaign: "spring, 2024", Recipient: "+380501112233"},
				{Line: 3, ID: `q"2`, Campaign: "spring"},
				{Line: 4, ID: "q3", Campaign: "multi\nline\ncampaign", Recipient: "+380"},
				{Line: 8, ID: "q5", Campaign: "quoted", Recipient: `a "quoted" phone`},
				{Line: 9, ID: "s6", Campaign: "spring, late", Recipient: "+381"},
			},
			Rejected: []Rejected{
				{Line: 7, Campaign: "spring", Kind: KindEmptyID, Reason: "empty message ID", Raw: `"",spring,+1`},
			},
		},
	}, {
		file: "quoted.csv",
		opts: Options{Campaign: "forced"},
		want: contents{
			Columns: []string{"messageId", "campaign", "recipient"},
			Rows: []Row{
				{Line: 2, ID: "q1", Campaign: "forced", Recipient: "+380501112233"},
				{Line: 3, ID: `q"2`, Campaign: "forced"},
				{Line: 4, ID: "q3", Campaign: "forced", Recipient: "+380"},
				{Line: 8, ID: "q5", Campaign: "forced", Recipient: `a "quoted" phone`},
				{Line: 9, ID: "s6", Campaign: "forced", Recipient: "+381"},
			},
			Rejected: []Rejected{
				{Line: 7, Campaign: "forced", Kind: KindEmptyID, Reason: "empty message ID", Raw: `"",spring,+1`},
			},
		},
	}, {
		// UTF-8 with a BOM, CRLF, an empty line, values with spaces around them.
		file: "bom_crlf.csv",
		want: contents{
			Columns: []string{"Message ID", "Campaign"},
			Rows: []Row{
				{Line: 2, ID: "ід-1", Campaign: "Весна"},
				{Line: 3, ID: "abc-2", Campaign: "spring"},
				{Line: 5, ID: "abc-3", Campaign: "spring"},
			},
		},
	}, {
		// A BOM right before a quoted header field.
		file: "bom_quoted.csv",
		want: contents{
			Columns: []string{"message_id"},
			Rows:    []Row{{Line: 2, ID: "bq-1", Campaign: "bom_quoted"}},
		},
	}, {
		file: "no_final_newline.csv",
		want: contents{
			Columns: []string{"id"},
			Rows: []Row{
				{Line: 2, ID: "n1", Campaign: "no_final_newline"},
				{Line: 3, ID: "n2", Campaign: "no_final_newline"},
			},
		},
	}, {
		// The header's comma is inside quotes: the semicolon wins. An empty last field.
		file: "semicolon.csv",
		want: contents{
			Columns: []string{"message_id", "note, with comma", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "m1", Campaign: "autumn"},
				{Line: 3, ID: "m2", Campaign: "semicolon"},
			},
		},
	}, {
		file: "tab.tsv",
		want: contents{
			Columns: []string{"MESSAGEID", "SENT_AT", "msisdn", "messagelist_id"},
			Rows: []Row{
				{Line: 2, ID: "t1", Campaign: "tab", SentAt: "2025-03-01 10:00", Recipient: "380501112233", MessagelistID: "123456"},
				{Line: 3, ID: "t2", Campaign: "tab"},
			},
		},
	}, {
		// Header names in other cases and spacing, every optional column.
		file: "header_spaced.csv",
		want: contents{
			Columns: []string{"Message ID", "Phone Number", "Sent Time", "Customer_Message_Id", "message-list-id", "CAMPAIGN"},
			Rows: []Row{{
				Line: 2, ID: "h1", Campaign: "Summer", Recipient: "380", SentAt: "2025-03-01",
				CustomerMessageID: "c-1", MessagelistID: "77",
			}},
		},
	}, {
		// messageId is preferred to an "id" column...
		file: "header_both_ids.csv",
		want: contents{
			Columns: []string{"id", "messageId", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "mid-1", Campaign: "x"},
				{Line: 3, ID: "mid-2", Campaign: "x"},
			},
		},
	}, {
		// ...unless the ID column is named.
		file: "header_both_ids.csv",
		opts: Options{IDColumn: "ID"},
		want: contents{
			Columns: []string{"id", "messageId", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "1", Campaign: "x"},
				{Line: 3, ID: "2", Campaign: "x"},
			},
		},
	}, {
		file: "campaign_column.csv",
		opts: Options{CampaignColumn: "WAVE"},
		want: contents{
			Columns: []string{"messageId", "wave"},
			Rows: []Row{
				{Line: 2, ID: "w1", Campaign: "W1"},
				{Line: 3, ID: "w2", Campaign: "campaign_column"},
			},
		},
	}, {
		file: "pipe.csv",
		opts: Options{Delimiter: '|'},
		want: contents{
			Columns: []string{"messageId", "campaign"},
			Rows:    []Row{{Line: 2, ID: "p1", Campaign: "x"}},
		},
	}, {
		// One column and no header: the first line is data. A second field is not.
		file: "bare.txt",
		want: contents{
			Rows: []Row{
				{Line: 1, ID: "b1", Campaign: "bare"},
				{Line: 2, ID: "b2", Campaign: "bare"},
				{Line: 4, ID: "b3", Campaign: "bare"},
			},
			Rejected: []Rejected{{
				Line: 5, ID: "b4", Campaign: "bare", Raw: "b4,extra",
				Kind: KindFieldCount, Reason: "2 fields, expected 1 (a list without header has one ID per line)",
			}},
		},
	}, {
		// Gzip by name; the campaign drops both extensions.
		file: "spring.csv.gz",
		want: contents{
			Columns: []string{"messageId", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "g1", Campaign: "spring"},
				{Line: 3, ID: "g2", Campaign: "other"},
			},
		},
	}, {
		// Gzip by its magic bytes.
		file: "gzip_noext.csv",
		want: contents{
			Rows: []Row{
				{Line: 1, ID: "g1", Campaign: "gzip_noext"},
				{Line: 2, ID: "g2", Campaign: "gzip_noext"},
			},
		},
	}, {
		file: "field_count.csv",
		want: contents{
			Columns: []string{"message_id", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "f1", Campaign: "a"},
				{Line: 5, ID: "f4", Campaign: "a"},
			},
			Rejected: []Rejected{
				{Line: 3, ID: "f2", Campaign: "a", Kind: KindFieldCount, Reason: "3 fields, header has 2", Raw: "f2,a,extra"},
				{Line: 4, ID: "f3", Campaign: "field_count", Kind: KindFieldCount, Reason: "1 field, header has 2", Raw: "f3"},
			},
		},
	}, {
		// 256 bytes is the limit, 300 is over it.
		file: "long_id.csv",
		want: contents{
			Columns: []string{"id"},
			Rows:    []Row{{Line: 2, ID: strings.Repeat("L", 256), Campaign: "long_id"}},
			Rejected: []Rejected{{
				Line: 3, ID: strings.Repeat("X", 300), Campaign: "long_id", Raw: strings.Repeat("X", 300),
				Kind: KindIDTooLong, Reason: "message ID is 300 bytes, longer than 256",
			}},
		},
	}, {
		// Control characters are named in the reason and escaped in the ID; Raw keeps
		// the tab and newline the file had.
		file: "control.csv",
		want: contents{
			Columns: []string{"id", "campaign"},
			Rows:    []Row{{Line: 6, ID: "ok", Campaign: "x"}},
			Rejected: []Rejected{
				{Line: 2, ID: `c\x07d`, Campaign: "x", Kind: KindControlCharacter, Reason: "control character U+0007 in message ID", Raw: `c\x07d,x`},
				{Line: 3, ID: `tab\x09here`, Campaign: "x", Kind: KindControlCharacter, Reason: "control character U+0009 in message ID", Raw: "\"tab\there\",x"},
				{Line: 4, ID: `new\x0aline`, Campaign: "x", Kind: KindControlCharacter, Reason: "control character U+000A in message ID", Raw: "\"new\nline\",x"},
				{Line: 7, ID: "zw\u200bsp", Campaign: "x", Kind: KindInvisibleCharacter, Reason: "invisible character U+200B in message ID", Raw: "zw\u200bsp,x"},
			},
		},
	}, {
		file: "invalid_utf8.csv",
		want: contents{
			Columns: []string{"id", "campaign"},
			Rows:    []Row{{Line: 4, ID: "u3", Campaign: "ok"}},
			Rejected: []Rejected{
				{Line: 2, ID: "u1", Campaign: "invalid_utf8", Kind: KindInvalidUTF8, Reason: `invalid UTF-8 in column "campaign"`, Raw: `u1,caf\xe9`},
				{Line: 3, ID: `u\xff2`, Campaign: "x", Kind: KindInvalidUTF8, Reason: `invalid UTF-8 in column "id"`, Raw: `u\xff2,x`},
			},
		},
	}, {
		// A bad quote rejects its line only: csv has read the whole line when it fails.
		file: "bare_quote.csv",
		want: contents{
			Columns: []string{"id", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "bq1", Campaign: "x"},
				{Line: 5, ID: "bq4", Campaign: "x"},
			},
			Rejected: []Rejected{
				{Line: 3, Campaign: "bare_quote", Kind: KindCSVSyntax, Reason: `bare " in non-quoted-field at column 3`, Raw: `bq"2,x`},
				{Line: 4, Campaign: "bare_quote", Kind: KindCSVSyntax, Reason: `extraneous or missing " in quoted-field at column 5`, Raw: `"bq3"x,y`},
			},
		},
	}, {
		// Excel's separator line: it sets the delimiter and is not the header.
		file: "sep_excel.csv",
		want: contents{
			Columns: []string{"messageId", "campaign"},
			Rows:    []Row{{Line: 3, ID: "e1", Campaign: "x,y"}},
		},
	}, {
		// Lines counted by CR; a CR inside quotes becomes a newline.
		file: "mac_cr.csv",
		want: contents{
			Columns: []string{"messageId", "campaign"},
			Rows: []Row{
				{Line: 2, ID: "m1", Campaign: "x"},
				{Line: 4, ID: "m2", Campaign: "two\nlines"},
			},
		},
	}, {
		// Two files concatenated: the second header is not an ID.
		file: "repeated_header.csv",
		want: contents{
			Columns: []string{"messageId"},
			Rows: []Row{
				{Line: 2, ID: "a1", Campaign: "repeated_header"},
				{Line: 4, ID: "a2", Campaign: "repeated_header"},
			},
			Rejected: []Rejected{
				{Line: 3, ID: "messageId", Campaign: "repeated_header", Kind: KindRepeatedHeader, Reason: "repeated header row", Raw: "messageId"},
			},
		},
	}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%+v", tt.file, tt.opts), func(t *testing.T) {
			name := testdata + tt.file
			for i := range tt.want.Rows {
				tt.want.Rows[i].File = name
			}
			for i := range tt.want.Rejected {
				tt.want.Rejected[i].File = name
			}
			got, err := readAll(t, name, nil, tt.opts)
			if err != nil {
				t.Fatalf("reading %s: %v", tt.file, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("reading %s: (-want +got)\n%s", tt.file, diff)
			}
		})
	}
}

func TestReadStdin(t *testing.T) {
	gz, err := os.ReadFile(testdata + "gzip_noext.csv")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		input []byte
		opts  Options
		want  contents
	}{{
		name:  "bare list",
		input: []byte("x1\r\nx2"),
		want: contents{Rows: []Row{
			{File: "-", Line: 1, ID: "x1", Campaign: "stdin"},
			{File: "-", Line: 2, ID: "x2", Campaign: "stdin"},
		}},
	}, {
		name:  "gzip",
		input: gz,
		opts:  Options{Campaign: "piped"},
		want: contents{Rows: []Row{
			{File: "-", Line: 1, ID: "g1", Campaign: "piped"},
			{File: "-", Line: 2, ID: "g2", Campaign: "piped"},
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, "-", bytes.NewReader(tt.input), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("reading stdin: (-want +got)\n%s", diff)
			}
		})
	}
}

// TestOpenErrors checks that an unusable file fails at Open with one line that names it.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notGzip := write("plain.csv.gz", "messageId\nabc\n")
	badFirst := write("bad_first.csv", "\"a\"b,c\nd,e\n")
	tests := []struct {
		name  string
		stdin io.Reader
		opts  Options
		want  string // in the message, after the name
	}{
		{name: testdata + "does_not_exist.csv", want: "no such file or directory"},
		{name: dir, want: "is a directory"},
		{name: testdata + "empty.csv", want: "empty file"},
		{name: testdata + "blank.csv", want: "empty file (no rows)"},
		{name: testdata + "binary.csv", want: "binary data, not CSV text (NUL byte at offset 8)"},
		{name: testdata + "utf16.csv", want: "UTF-16 text, not UTF-8"},
		{name: testdata + "workbook.xlsx", want: "a ZIP archive (an Excel workbook?), not CSV text"},
		{name: testdata + "header_only.csv", want: `no message IDs (only a header: "messageId", "campaign")`},
		{name: testdata + "no_id_column.csv", want: `no usable ID column: the header names no messageId, message_id, msg_id, sms_id, message_uuid, uuid or id column; the columns are "phone", "campaign" (name the ID column with --id-column)`},
		{name: testdata + "no_header.csv", want: `no usable ID column: line 1 has 2 fields and is not a header naming messageId, message_id, msg_id, sms_id, message_uuid, uuid or id (it has "abc", "spring")`},
		{name: testdata + "quoted.csv", opts: Options{IDColumn: "msg"}, want: `no column "msg"; the columns are "messageId", "campaign", "recipient"`},
		{name: testdata + "bare.txt", opts: Options{IDColumn: "id"}, want: `no column "id": line 1 is not a header (it has "b1")`},
		{name: testdata + "campaign_column.csv", opts: Options{CampaignColumn: "batch"}, want: `no campaign column "batch"; the columns are "messageId", "wave"`},
		{name: testdata + "quoted.csv", opts: Options{Delimiter: '"'}, want: `invalid delimiter '"'`},
		{name: testdata + "quoted.csv", opts: Options{IDColumn: "_"}, want: `invalid ID column name "_"`},
		{name: notGzip, want: "gzip: invalid header"},
		{name: badFirst, want: `line 1: first row unreadable: extraneous or missing " in quoted-field at column 3`},
		{name: "-", want: "no standard input"},
		{name: "-", stdin: strings.NewReader(""), want: "empty file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.name), func(t *testing.T) {
			r, err := Open(tt.name, tt.stdin, tt.opts)
			if err == nil {
				r.Close()
				t.Fatalf("Open(%q) = nil error, want %q", tt.name, tt.want)
			}
			prefix := tt.name
			if prefix == "-" {
				prefix = "stdin"
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("Open(%q) = %q, want one line starting with the name and containing %q", tt.name, msg, tt.want)
			}
		})
	}
	if _, err := Open(testdata+"does_not_exist.csv", nil, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want an error that is fs.ErrNotExist", err)
	}
}

func TestOpenUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read a file without read permission")
	}
	p := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(p, []byte("id\nx\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p, nil, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Open(unreadable) = %v, want %s: permission denied", err, p)
	}
}

// TestNextErrors checks the errors that end a file after a good start: they name the file
// and line, and Next keeps returning them.
func TestNextErrors(t *testing.T) {
	// Enough rows that the damage lies past what Open reads to detect the format.
	var text bytes.Buffer
	text.WriteString("messageId,campaign\n")
	for i := range 20000 {
		fmt.Fprintf(&text, "msg-%06d,campaign-%d\n", i, i%7)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(text.Bytes())
	zw.Close()
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.csv.gz")
	if err := os.WriteFile(truncated, zipped.Bytes()[:zipped.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	badCRC := bytes.Clone(zipped.Bytes())
	badCRC[len(badCRC)-8] ^= 0xFF // the CRC-32 in the gzip trailer
	checksum := filepath.Join(dir, "checksum.csv.gz")
	if err := os.WriteFile(checksum, badCRC, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		wantRows int
		want     string
	}{
		{name: testdata + "unterminated.csv", wantRows: 1, want: "unterminated.csv line 3: quoted field not closed before the end of the file (line 5)"},
		{name: truncated, want: "gzip data truncated: unexpected EOF"},
		{name: checksum, wantRows: 20000, want: "line 20002: gzip: invalid checksum"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.name), func(t *testing.T) {
			r, err := Open(tt.name, nil, Options{})
			if err != nil {
				t.Fatalf("Open(%q) = %v", tt.name, err)
			}
			defer r.Close()
			rows := 0
			for {
				row, _, err := r.Next()
				if err == nil {
					if row != nil {
						rows++
					}
					continue
				}
				msg := err.Error()
				if err == io.EOF || !strings.HasPrefix(msg, tt.name+" line ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
					t.Fatalf("Next() = %q after %d rows, want one line starting with %q containing %q", msg, rows, tt.name+" line", tt.want)
				}
				if _, _, again := r.Next(); again != err {
					t.Errorf("Next() after an error = %v, want the same error", again)
				}
				break
			}
			if tt.wantRows > 0 && rows != tt.wantRows {
				t.Errorf("read %d rows before the error, want %d", rows, tt.wantRows)
			}
			if tt.wantRows == 0 && (rows == 0 || rows == 20000) {
				t.Errorf("read %d rows before the error, want some but not all", rows)
			}
		})
	}
}

// TestRawBounded checks that a runaway row is kept as evidence, not whole.
func TestRawBounded(t *testing.T) {
	long := strings.Repeat("é", 3000) // two bytes each: the cut must not split one
	input := "messageId,campaign\nok,x\n" + "bad," + long + ",extra\nok2,x\n"
	got, err := readAll(t, "-", strings.NewReader(input), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != 2 || len(got.Rejected) != 1 {
		t.Fatalf("got %d rows and %d rejected, want 2 and 1", len(got.Rows), len(got.Rejected))
	}
	raw := got.Rejected[0].Raw
	if len(raw) > MaxRawLength || !utf8.ValidString(raw) || !strings.HasPrefix(raw, "bad,éé") || !strings.HasSuffix(raw, "é…") {
		t.Errorf("Raw = %q (%d bytes), want valid UTF-8, at most %d bytes, cut after a whole é and marked …", raw, len(raw), MaxRawLength)
	}
	if got.Rows[1].Line != 4 {
		t.Errorf("row after the long one is on line %d, want 4", got.Rows[1].Line)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct {
		in        string
		keepLines bool
		cut       bool
		want      string
	}{
		{in: "abc", want: "abc"},
		{in: "a\xffb", want: `a\xffb`},
		{in: "a\x00b\x7f", want: `a\x00b\x7f`},
		{in: "a\tb\nc", want: `a\x09b\x0ac`},
		{in: "a\tb\nc", keepLines: true, want: "a\tb\nc"},
		{in: "a\u0085b", want: `a\u0085b`},
		{in: "\ufffd", want: "\ufffd"}, // a real replacement character is text
		{in: "abc", cut: true, want: "abc…"},
		{in: strings.Repeat("x", MaxRawLength), want: strings.Repeat("x", MaxRawLength)},
		{in: strings.Repeat("x", MaxRawLength+1), want: strings.Repeat("x", MaxRawLength-len("…")) + "…"},
		{in: strings.Repeat("\x01", MaxRawLength), want: strings.Repeat(`\x01`, (MaxRawLength-len("…"))/4) + "…"},
	}
	for _, tt := range tests {
		if got := printable(tt.in, tt.keepLines, tt.cut); got != tt.want {
			t.Errorf("printable(%q, %v, %v) = %q, want %q", tt.in, tt.keepLines, tt.cut, got, tt.want)
		}
	}
}

func TestDetectDelimiter(t *testing.T) {
	tests := []struct {
		in   string
		want rune
	}{
		{"id,campaign\n", ','},
		{"id;campaign;phone\n", ';'},
		{"id\tcampaign\n", '\t'},
		{"abc123\n", ','},                // a bare list
		{`"a;b",c` + "\n", ','},          // quoted separators do not count
		{`"a,""b,c""";d` + "\n", ';'},    // nor with doubled quotes inside
		{"id;a,b\n", ','},                // a tie goes to the comma
		{",,\n;;\n\nid;campaign\n", ';'}, // separator-only lines are blank
		{"id;x\nc,d,e,f\n", ';'},         // only the first line counts
		{"id;x", ';'},                    // no line end
		{"", ','},
	}
	for _, tt := range tests {
		if got := detectDelimiter([]byte(tt.in)); got != tt.want {
			t.Errorf("detectDelimiter(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHeaderNames(t *testing.T) {
	// Every spelling campaign tools write finds the same column.
	for _, h := range []string{"messageId", "message_id", "Message ID", "MESSAGEID", "id", " Id ", "message-id", "\ufeffmessageId",
		"sms_id", "SMS ID", "smsid", "SmsId", "sms-id", "msg_id", "msgid", "Msg ID", "messageid", "message_uuid", "MessageUUID", "uuid", "UUID"} {
		input := h + ",campaign\nabc,x\n"
		got, err := readAll(t, "-", strings.NewReader(input), Options{})
		if err != nil {
			t.Errorf("header %q: %v", h, err)
			continue
		}
		want := []Row{{File: "-", Line: 2, ID: "abc", Campaign: "x"}}
		if diff := cmp.Diff(want, got.Rows); diff != "" {
			t.Errorf("header %q: (-want +got)\n%s", h, diff)
		}
	}
	optional := []struct {
		header string
		want   Row
	}{
		{"recipient", Row{Recipient: "v"}}, {"phone", Row{Recipient: "v"}}, {"to", Row{Recipient: "v"}},
		{"MSISDN", Row{Recipient: "v"}}, {"number", Row{Recipient: "v"}},
		{"sent_at", Row{SentAt: "v"}}, {"sentAt", Row{SentAt: "v"}}, {"sent", Row{SentAt: "v"}},
		{"Sent Time", Row{SentAt: "v"}}, {"senttime", Row{SentAt: "v"}}, {"timestamp", Row{SentAt: "v"}},
		{"customerMessageId", Row{CustomerMessageID: "v"}}, {"customer_message_id", Row{CustomerMessageID: "v"}},
		{"customerid", Row{CustomerMessageID: "v"}},
		{"messagelistId", Row{MessagelistID: "v"}}, {"messagelist_id", Row{MessagelistID: "v"}},
		{"message_list_id", Row{MessagelistID: "v"}},
		{"Campaign", Row{Campaign: "v"}},
		{"unknown", Row{Campaign: "stdin"}},
	}
	for _, tt := range optional {
		got, err := readAll(t, "-", strings.NewReader("messageId;"+tt.header+"\nabc;v\n"), Options{})
		if err != nil {
			t.Errorf("header %q: %v", tt.header, err)
			continue
		}
		want := tt.want
		want.File, want.Line, want.ID = "-", 2, "abc"
		if want.Campaign == "" {
			want.Campaign = "stdin"
		}
		if diff := cmp.Diff([]Row{want}, got.Rows); diff != "" {
			t.Errorf("header %q: (-want +got)\n%s", tt.header, diff)
		}
	}
}

func TestDefaultCampaign(t *testing.T) {
	tests := map[string]string{
		"spring.csv.gz":        "spring",
		"data/spring.csv":      "spring",
		"spring.2024.csv":      "spring.2024",
		"spring.GZ":            "spring",
		"spring":               "spring",
		"/abs/path/autumn.tsv": "autumn",
		".csv":                 ".csv",
	}
	for in, want := range tests {
		if got := defaultCampaign(in); got != want {
			t.Errorf("defaultCampaign(%q) = %q, want %q", in, got, want)
		}
	}
}

// closeCounter is an input that counts how often it is closed.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestNewReader(t *testing.T) {
	gz, err := os.ReadFile(testdata + "spring.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"campaigns/spring.csv.gz": {Data: gz},
		"campaigns/empty.csv":     {Data: nil},
	}
	f, err := fsys.Open("campaigns/spring.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	src := &closeCounter{Reader: f}
	r, err := NewReader("campaigns/spring.csv.gz", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	row, _, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := Row{File: "campaigns/spring.csv.gz", Line: 2, ID: "g1", Campaign: "spring"}
	if diff := cmp.Diff(want, *row); diff != "" {
		t.Errorf("first row: (-want +got)\n%s", diff)
	}
	r.Close()
	r.Close()
	if src.closed != 1 {
		t.Errorf("input closed %d times by two calls to Close, want once", src.closed)
	}

	// A failure leaves the input to the caller.
	src = &closeCounter{Reader: strings.NewReader("")}
	if _, err := NewReader("campaigns/empty.csv", src, Options{}); err == nil || err.Error() != "campaigns/empty.csv: empty file" {
		t.Errorf("NewReader(empty) = %v, want campaigns/empty.csv: empty file", err)
	}
	if src.closed != 0 {
		t.Errorf("failed NewReader closed its input")
	}
	dir, err := fsys.Open("campaigns")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader("campaigns", dir, Options{}); err == nil || err.Error() != "campaigns: is a directory" {
		t.Errorf("NewReader(dir) = %v, want campaigns: is a directory", err)
	}

	// Open does not close stdin.
	stdin := &closeCounter{Reader: strings.NewReader("a1\n")}
	r, err = Open("-", stdin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if stdin.closed != 0 {
		t.Errorf("Close closed stdin")
	}
}
