package idlist

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// idShapes generate n realistic message IDs of one shape each.
var idShapes = map[string]func(r *rand.Rand, i int) string{
	"numeric":  func(r *rand.Rand, i int) string { return fmt.Sprint(4_100_000_000 + r.IntN(1_000_000)) },
	"small":    func(r *rand.Rand, i int) string { return fmt.Sprint(i + 1) },
	"hex16":    func(r *rand.Rand, i int) string { return fmt.Sprintf("%016x", r.Uint64()) },
	"HEX32":    func(r *rand.Rand, i int) string { return fmt.Sprintf("%016X%016X", r.Uint64(), r.Uint64()) },
	"uuid":     func(r *rand.Rand, i int) string { return uuid(r) },
	"prefixed": func(r *rand.Rand, i int) string { return fmt.Sprintf("msg-%06d", i+123) },
	"dotted":   func(r *rand.Rand, i int) string { return fmt.Sprintf("42.%d.%d", r.IntN(1000), i) },
	"base62":   func(r *rand.Rand, i int) string { return base62(r, 12) },
	"mixed": func(r *rand.Rand, i int) string {
		switch i % 4 {
		case 0:
			return uuid(r)
		case 1:
			return fmt.Sprint(r.IntN(1e9))
		case 2:
			return fmt.Sprintf("msg-%06d", i)
		}
		return fmt.Sprintf("%016x", r.Uint64())
	},
}

func uuid(r *rand.Rand) string {
	h := fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

func base62(r *rand.Rand, n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestHeaderShaped(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := func(shape string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = idShapes[shape](r, i)
		}
		return out
	}
	base62Rows := []string{"wfr92MYW4P1A", "AixFDyB7upKT", "odIctpjSR0H2"}
	tests := []struct {
		first string
		rows  []string
		want  bool
	}{
		// Headers batstat does not know, above every shape of ID.
		{"reference", ids("numeric", 20), true},
		{"Reference", ids("small", 3), true},
		{"sms_ref", ids("hex16", 20), true},
		{"MessageGUID", ids("uuid", 20), true},
		{"message guid", ids("uuid", 5), true},
		{"external id", ids("prefixed", 20), true},
		{"msg", ids("prefixed", 20), true}, // letters of the rows' prefix, but no digit
		{"Номер повідомлення", ids("numeric", 2), true},
		{"ids", ids("mixed", 20), true},
		{"ref", ids("dotted", 4), true},
		{"messageId,campaign", []string{"a1,spring", "a22,spring"}, true}, // a comma file read with another separator
		{"id;campaign;phone", []string{"1;x;+380", "2;x;+381"}, true},
		{"HEXVALUE", ids("HEX32", 20), true},
		{"abcdefghijkl", base62Rows, false},        // base62 characters and length: could be an ID
		{"abcdefghijk", base62Rows, true},          // one short of their length
		{"abcdefghijkl", ids("base62", 20), false}, // some rows without a digit: no contrast

		// First lines that are message IDs.
		{"4100000001", ids("numeric", 20), false},
		{"0f3a9c2e7b1d4a58", ids("hex16", 20), false},
		{"3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c", ids("uuid", 20), false},
		{"msg-000122", ids("prefixed", 20), false},
		{"ab12", ids("mixed", 20), false},
		{"KpQzRtXyWvUs", ids("base62", 20), false}, // a random ID that happens to have no digit
		{"deadbeefcafe", ids("hex16", 1), true},    // hex letters only, 12 long, rows 16 long
		{"deadbeefcafebabe", ids("hex16", 20), false},
		{"x", ids("numeric", 20), false},           // one letter: too little to call a word
		{"abc", nil, false},                        // nothing to compare
		{"abc", []string{"def", "ghi"}, false},     // rows without digits: no contrast
		{"abc", []string{"d1", "efg"}, false},      // one row without a digit
		{"test-message", ids("numeric", 20), true}, // not an ID of this list; the error says how to load it
	}
	for _, tt := range tests {
		why, got := headerShaped(tt.first, tt.rows)
		if got != tt.want {
			t.Errorf("headerShaped(%q, %q) = %v (%s), want %v", tt.first, tt.rows[:min(len(tt.rows), 3)], got, why, tt.want)
		}
		if got && why == "" {
			t.Errorf("headerShaped(%q) gives no reason", tt.first)
		}
	}
}

// TestBareListsLoad checks that lists without header load whole, their first line included,
// for every realistic shape of ID and many random draws: a false header is as bad as a
// missed one, since the file then cannot be loaded without editing it.
func TestBareListsLoad(t *testing.T) {
	for shape, gen := range idShapes {
		for seed := range 200 {
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			n := 1 + seed%30
			var sb strings.Builder
			want := make([]string, n)
			for i := range want {
				want[i] = gen(r, i)
				sb.WriteString(want[i] + "\n")
			}
			got, err := readAll(t, "-", strings.NewReader(sb.String()), Options{})
			if err != nil {
				t.Fatalf("%s list (seed %d): %v\n%s", shape, seed, err, sb.String())
			}
			var ids []string
			for _, row := range got.Rows {
				ids = append(ids, row.ID)
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Fatalf("%s list (seed %d): (-want +got)\n%s", shape, seed, diff)
			}
		}
	}
}

func TestUnknownHeader(t *testing.T) {
	tests := []struct {
		input string
		want  string
	}{
		{"reference\n4100000001\n4100000002\n", `stdin line 1: "reference" looks like a header, not a message ID (it has no digit and characters that none of the 2 lines after it has): name the ID column with --id-column "reference", or, if it is a message ID, add a first line messageId`},
		{"\ufeffSMS Reference\r\nmsg-000001\r\nmsg-000002\r\n", `stdin line 1: "SMS Reference" looks like a header`},
		{"external_id\n0f3a9c2e7b1d4a58\n\n1a3a9c2e7b1d4a58\n", `stdin line 1: "external_id" looks like a header`},
		{"sep=;\nref\n1\n2\n", `stdin line 2: "ref" looks like a header`},
	}
	for _, tt := range tests {
		_, err := Open("-", strings.NewReader(tt.input), Options{})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) = %v, want one line starting %q", tt.input, err, tt.want)
		}
	}

	// Named, the column loads.
	got, err := readAll(t, "-", strings.NewReader("reference\n4100000001\n4100000002\n"), Options{IDColumn: "Reference"})
	if err != nil || len(got.Rows) != 2 || got.Rows[0].ID != "4100000001" {
		t.Errorf("with --id-column reference: %+v, %v; want the two IDs", got.Rows, err)
	}
	// A one-column file headed "message" is a list of messages; next to other columns
	// "message" is the text, not an ID.
	got, err = readAll(t, "-", strings.NewReader("Message\nabc1\nabc2\n"), Options{})
	if err != nil || len(got.Rows) != 2 || got.Rows[0].ID != "abc1" || got.Rows[0].Line != 2 {
		t.Errorf("one column headed Message: %+v, %v; want abc1 on line 2 and abc2", got.Rows, err)
	}
	if _, err := Open("-", strings.NewReader("phone,message\n+380,hello\n"), Options{}); err == nil || !strings.Contains(err.Error(), "no usable ID column") {
		t.Errorf("phone,message header: %v, want no usable ID column", err)
	}
	// A fatal error among the rows read ahead comes after the rows before it, as it does
	// past them.
	r, err := Open("-", strings.NewReader("a1\na2\n\"a3\na4\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		row, _, err := r.Next()
		if err != nil {
			if err == io.EOF || !strings.Contains(err.Error(), "quoted field not closed") {
				t.Errorf("Next() = %v, want the unclosed quote", err)
			}
			break
		}
		ids = append(ids, row.ID)
	}
	if diff := cmp.Diff([]string{"a1", "a2"}, ids); diff != "" {
		t.Errorf("rows before the unclosed quote (-want +got)\n%s", diff)
	}
}

func TestIDColumnPreference(t *testing.T) {
	tests := []struct{ header, row, want string }{
		{"id,sms_id", "1,s-1", "s-1"},
		{"uuid,id", "u-1,2", "u-1"},
		{"msg_id,messageId", "m-1,M-1", "M-1"},
		{"id,message_uuid,campaign", "1,u-1,x", "u-1"},
	}
	for _, tt := range tests {
		got, err := readAll(t, "-", strings.NewReader(tt.header+"\n"+tt.row+"\n"), Options{})
		if err != nil || len(got.Rows) != 1 || got.Rows[0].ID != tt.want {
			t.Errorf("header %q: %+v, %v; want ID %q", tt.header, got.Rows, err, tt.want)
		}
	}
}

func TestParseDelimiter(t *testing.T) {
	tests := []struct {
		in   string
		want rune
		err  bool
	}{
		{"", 0, false}, {",", ',', false}, {";", ';', false}, {"\t", '\t', false}, {`\t`, '\t', false},
		{"tab", '\t', false}, {"TAB", '\t', false},
		{"|", 0, true}, {" ", 0, true}, {",,", 0, true}, {"comma", 0, true}, {`"`, 0, true}, {"\\", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDelimiter(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseDelimiter(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !strings.Contains(err.Error(), `want ",", ";" or a tab`) {
			t.Errorf("ParseDelimiter(%q) error %q does not say what is accepted", tt.in, err)
		}
	}
}

// TestForcedDelimiter checks that a forced delimiter that splits no line, where another
// common one splits every line alike, is an error naming the right one; and that it is
// not one otherwise.
func TestForcedDelimiter(t *testing.T) {
	comma := "messageId,campaign,phone\na1,x,+380\na2,y,+381\n"
	tests := []struct {
		input string
		delim rune
		want  string // "" = no error
	}{
		{comma, ';', `stdin: --delimiter ';' splits none of its first 3 lines, while ',' splits every one into 3 fields: use --delimiter ','`},
		{comma, '\t', `stdin: --delimiter tab splits none of its first 3 lines, while ',' splits every one into 3 fields: use --delimiter ','`},
		{comma, '|', `stdin: --delimiter '|' splits none of its first 3 lines, while ',' splits every one into 3 fields: use --delimiter ','`},
		{"id;campaign\r\na1;x\r\n", ',', `stdin: --delimiter ',' splits none of its first 2 lines, while ';' splits every one into 2 fields: use --delimiter ';'`},
		{"id\tcampaign\ra1\tx\r", ';', `while tab splits every one into 2 fields: use --delimiter tab`},
		{"\"message,id\";campaign\n\"a,1\";x\n", ',', `use --delimiter ';'`},  // quoted commas split nothing
		{"\"message,id\";campaign\n\"a,1\";x\n", '\t', `use --delimiter ';'`}, // quoted commas do not count
		{comma, ',', ""},
		{"id\na1\na2\n", ';', ""},                                       // one column: nothing splits, nothing to say
		{"id;x\na,b,c\na\n", '|', ""},                                   // no separator splits every line alike
		{"messageId|campaign\np1|x\n", '|', ""},                         // the pipe file, read as it is written
		{"sep=;\nmessageId;campaign\na1;x\n", ',', ""},                  // Excel's line declares it: not second-guessed
		{strings.Repeat("a1,x\n", 100) + "a2\n", ';', `first 21 lines`}, // the first lines decide
	}
	for _, tt := range tests {
		_, err := Open("-", strings.NewReader(tt.input), Options{Delimiter: tt.delim})
		switch {
		case tt.want == "" && err != nil && strings.Contains(err.Error(), "--delimiter"):
			t.Errorf("Open(%q, %q) = %v, want no delimiter error", tt.input, tt.delim, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Open(%q, %q) = %v, want an error containing %q", tt.input, tt.delim, err, tt.want)
		}
	}
}
